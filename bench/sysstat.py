"""CPU and memory from /proc: server process trees, this generator, the whole machine.

The machine is shared, so every window also reports what was *not* ours: the whole
machine's busy time (/proc/stat) less the generator and the server trees. A server's CPU
is its process tree's: its own time, its reaped children's (cutime/cstime, e.g. the
PostgreSQL backends that came and went) and its live descendants'.
"""

from __future__ import annotations

import os
import resource
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _scan():
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
        except OSError:
            continue
        fields = rest.split()
        # fields[0] = state (field 3); ppid = 4, utime 14, stime 15, cutime 16, cstime 17
        procs[int(d)] = (
            int(fields[1]),
            (int(fields[11]) + int(fields[12])) / CLK_TCK,
            (int(fields[13]) + int(fields[14])) / CLK_TCK,
            head.split("(", 1)[1],
        )
    return procs


def _rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid, children):
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, ()))
    return out


def system_busy_s():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def self_cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def snapshot(pids):
    t = time.perf_counter_ns()
    procs = _scan()
    children = {}
    for p, info in procs.items():
        children.setdefault(info[0], []).append(p)
    ours = {os.getpid()}
    out = {}
    for pid in pids:
        if pid not in procs:
            continue
        tree = _tree(pid, children)
        ours.update(tree)
        cpu = procs[pid][1] + procs[pid][2] + sum(procs[p][1] + procs[p][2] for p in tree[1:])
        rss = sum(_rss_kb(p) for p in tree)
        out[pid] = {"cpu_s": cpu, "rss_kb": rss, "comm": procs[pid][3], "tree": len(tree)}
    kthreads = set(_tree(2, children))
    foreign = {
        p: info[1]
        for p, info in procs.items()
        if p not in ours and p not in kthreads and p != os.getppid()
    }
    return {
        "t_ns": t,
        "self_cpu": self_cpu(),
        "procs": out,
        "busy": system_busy_s(),
        "foreign": foreign,
    }


def window(a, b):
    sec = (b["t_ns"] - a["t_ns"]) / 1e9
    servers = []
    for pid, pb in b["procs"].items():
        pa = a["procs"].get(pid)
        if pa:
            cpu = pb["cpu_s"] - pa["cpu_s"]
            servers.append(
                {
                    "pid": pid,
                    "comm": pb["comm"],
                    "cpu_s": round(cpu, 3),
                    "cpu_pct": round(100 * cpu / sec, 1),
                    "rss_kb": pb["rss_kb"],
                    "procs": pb["tree"],
                }
            )
    loadgen = 100 * (b["self_cpu"] - a["self_cpu"]) / sec
    system = 100 * (b["busy"] - a["busy"]) / sec
    foreign = 100 * sum(c - a["foreign"].get(p, 0) for p, c in b["foreign"].items()) / sec
    return {
        "window_s": round(sec, 2),
        "servers": servers,
        "loadgen_cpu_pct": round(loadgen, 1),
        "system_cpu_pct": round(system, 1),
        "other_cpu_pct": round(system - loadgen - sum(s["cpu_pct"] for s in servers), 1),
        "foreign_cpu_pct": round(foreign, 1),
    }
