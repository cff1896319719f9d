"""The benchmark's scenarios (docs/performance.md): a rate sweep of the chat against the
room, idle sockets, one big group, and a py-spy profile. Each drives bench/loadgen.py
against the stacks of bench/stacks.py and appends one JSON line per run to
bench/results/runs.jsonl."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from scripts.devstack import REPO_ROOT

from . import sysstat
from .stacks import ChatStack, RoomStack

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PY = sys.executable


def raise_fd_limit():
    """Soft fd limit to the hard one, here and so in every child (daphne, redis, loadgen)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def busy_pct(seconds=1.0):
    b0, t0 = sysstat.system_busy_s(), time.monotonic()
    time.sleep(seconds)
    return round(100 * (sysstat.system_busy_s() - b0) / (time.monotonic() - t0), 1)


def wait_quiet(limit, max_wait):
    """Other sessions share the machine: wait (bounded) until it is below `limit` % busy."""
    start = time.monotonic()
    while True:
        pct = busy_pct()
        if pct < limit or time.monotonic() - start > max_wait:
            return pct, round(time.monotonic() - start, 1)
        time.sleep(2)


def settle_after_restart(args):
    """After fresh workers: wait (at most 10 s) until their start-up work is over and the
    machine is below `--quiet-limit` % busy, measured, not a fixed pause."""
    return wait_quiet(args.quiet_limit, 10)


def chat_frame_bytes(plan, text_chars):
    """Length of one chat send frame for this plan (one envelope, one sender)."""
    from . import envelopes

    conv = plan["conversations"][0]
    small = dict(plan, conversations=[conv])
    frames = envelopes.prepare(
        small, 1, "size", text_chars=text_chars, workers=1, only={conv["members"][0]}
    )
    return max(len(t) for v in frames.values() for _, t in v)


def loadgen(args, target, stack, plan_path, extra, tag, label):
    pids = [p for p in stack.pids() if p]
    cmd = [
        PY,
        "-m",
        "bench.loadgen",
        "--target",
        target,
        "--plan",
        str(plan_path),
        "--url-base",
        *stack.ws_bases,
        *extra,
        "--tag",
        tag,
    ]
    if stack.cafile:
        cmd += ["--cafile", stack.cafile]
    for pid in pids:
        cmd += ["--server-pid", str(pid)]
    pre_busy, waited = wait_quiet(args.quiet_limit, args.quiet_wait)
    over0 = stack.log_count("over capacity")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=REPO_ROOT)
    sys.stderr.write(r.stderr[-3000:])
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"loadgen gave no result (rc {r.returncode})\n{r.stderr[-3000:]}")
    res = json.loads(lines[-1])
    res.update(
        label,
        pre_run_busy_pct=pre_busy,
        quiet_wait_s=waited,
        over_capacity_log_lines=stack.log_count("over capacity") - over0,
        server_tracebacks=stack.log_count("Traceback"),
        loadgen_cmd=" ".join(cmd[2:]),
        git=git_rev(),
    )
    res["contaminated"] = res.get("other_cpu_pct", 0) > args.other_limit
    if res["over_capacity_log_lines"]:
        res["pass"] = False
    RESULTS.mkdir(exist_ok=True)
    with open(args.out, "a") as f:
        f.write(json.dumps(res, sort_keys=True) + "\n")
    return res


_rev = None


def git_rev():
    global _rev
    if _rev is None:
        try:
            _rev = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            dirty = subprocess.run(
                [
                    "git",
                    "status",
                    "--porcelain",
                    "--",
                    "messaging",
                    "chatclient/protocol.py",
                    "chatsite",
                ],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            _rev += "+dirty" if dirty else ""
        except (OSError, subprocess.SubprocessError):
            _rev = "?"
    return _rev


def one_line(r):
    L = r.get("latency_ms", {})
    srv = " + ".join(f"{s['comm'][:8]} {s['cpu_pct']}%" for s in r.get("servers", []))
    return (
        f"== {r['tag']:<28} {'PASS' if r['pass'] else 'fail'} sent {r['sent']} lost "
        f"{r['lost']} p50/p99 {L.get('p50')}/{L.get('p99')} ms, {r['delivered_per_s']}/s "
        f"delivered; cpu {r['server_cpu_ms_per_msg']} ms/msg ({srv}); loadgen "
        f"{r['loadgen_cpu_pct']}%, not ours {r['other_cpu_pct']}%; errors {r['errors']}"
    )


def sweep(args):
    raise_fd_limit()
    sc, k = args.scenario, args.k
    room = chat = None
    try:
        targets = []
        if "chat" in args.targets:
            chat = ChatStack(
                sc,
                dict(e.split("=", 1) for e in args.server_env),
                seed=(args.devices, k),
                tree=args.server_tree,
                workers=args.workers,
            ).start()
            plan = chat.plan
            plan_path = chat.tmp / "plan.json"
            plan_path.write_text(json.dumps(plan))
            targets.append(("chat", chat))
        else:
            plan = {
                "room_size": k,
                "devices": [{} for _ in range(args.devices)],
                "conversations": [
                    {"id": g, "members": list(range(g * k, (g + 1) * k))}
                    for g in range(args.devices // k)
                ],
            }
        if "room" in args.targets:
            room = RoomStack(sc, workers=args.workers).start()
            room_plan = {
                "room_size": k,
                "devices": [{} for _ in plan["devices"]],
                "conversations": plan["conversations"],
            }
            room_plan_path = Path(room.dir) / "plan.json"
            room_plan_path.write_text(json.dumps(room_plan))
            targets.insert(0, ("room", room))
        frame = chat_frame_bytes(plan, args.text_chars) if chat else args.room_frame
        pad = max(0, frame - 60)
        state = {t: {"best": None, "broke": None} for t, _ in targets}

        def at(target, stack, rate, note=""):
            if args.restart:
                stack.restart_workers()
                settle_after_restart(args)
            extra = [
                "--rate",
                str(rate),
                "--duration",
                str(args.duration),
                "--warmup",
                str(args.warmup),
                "--drain",
                str(args.drain),
            ]
            if target == "room":
                extra += ["--pad", str(pad)]
                path = room_plan_path
            else:
                extra += ["--text-chars", str(args.text_chars), "--sync-check"]
                path = plan_path
            tag = f"s{sc}-k{k}-{target}-r{rate}{args.tag}"
            for attempt in range(1, args.attempts + 1):
                label = {
                    "scenario": sc,
                    "sweep": args.label or "",
                    "note": note,
                    "attempt": attempt,
                }
                r = loadgen(args, target, stack, path, extra, tag, label)
                print(one_line(r), file=sys.stderr, flush=True)
                # a failure is retried only when other processes' CPU could explain it
                if r["pass"] or not r["contaminated"]:
                    break
                if args.restart:
                    stack.restart_workers()
                    settle_after_restart(args)
            return r

        for rate in args.rates:
            for target, stack in targets:
                st = state[target]
                if st["broke"] is not None:
                    continue
                r = at(target, stack, rate)
                if r["pass"]:
                    st["best"] = rate
                else:
                    st["broke"] = rate
            if all(s["broke"] is not None for s in state.values()):
                break
        if args.refine:
            for target, stack in targets:
                st = state[target]
                if st["best"] and st["broke"] and st["broke"] - st["best"] > args.refine_min:
                    mid = (st["best"] + st["broke"]) // 2
                    if at(target, stack, mid, "refine")["pass"]:
                        st["best"] = mid
                    else:
                        st["broke"] = mid
        for _ in range(args.confirm):
            for target, stack in targets:
                st = state[target]
                for rate in (st["best"], st["broke"]):
                    if rate is not None:
                        at(target, stack, rate, "confirm")
        print(
            f"== scenario {sc} k={k}: "
            + "; ".join(f"{t}: best {s['best']} first fail {s['broke']}" for t, s in state.items()),
            file=sys.stderr,
        )
    finally:
        for s in (chat, room):
            if s is not None:
                s.stop()


def _thread_cpu(pid):
    """CPU seconds of each thread of `pid`: {tid: (name, seconds)}."""
    out = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
                fields = rest.split()
                cpu = (int(fields[11]) + int(fields[12])) / sysstat.CLK_TCK
                out[int(tid)] = (head.split("(", 1)[1], cpu)
    return out


class CpuTrace:
    """Per-second CPU of the server processes, by thread, sampled from /proc while a run
    goes: where in time (and in which thread: event loop, database thread) an idle
    worker's CPU is spent."""

    def __init__(self, pids, every=1.0):
        self.pids, self.every = pids, every
        self.samples = []  # (t, {pid: {tid: (name, cpu_s)}})
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t0 = time.monotonic()
        while not self.stop.is_set():
            self.samples.append(
                (round(time.monotonic() - t0, 2), {p: _thread_cpu(p) for p in self.pids})
            )
            self.stop.wait(self.every)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def series(self):
        """[(t, {"pid/main" or "pid/tid": % of a core in the second before t})]"""
        out = []
        for (t0, a), (t1, b) in zip(self.samples, self.samples[1:], strict=False):
            row = {}
            for pid, threads in b.items():
                for tid, (name, cpu) in threads.items():
                    before = a.get(pid, {}).get(tid, (name, cpu))[1]
                    key = f"{pid}/{'main' if tid == pid else tid}"
                    row[key] = row.get(key, 0) + round(100 * (cpu - before) / (t1 - t0), 1)
            out.append((t1, row))
        return out


def idle(args):
    hard = raise_fd_limit()
    print(f"fd limit {hard}", file=sys.stderr)
    for target in args.targets:
        stack = None
        try:
            if target == "chat":
                stack = ChatStack(
                    args.scenario,
                    dict(e.split("=", 1) for e in args.server_env),
                    seed=(args.devices, 2),
                    tree=args.server_tree,
                    unit_daphne=args.unit_daphne,
                    workers=args.workers,
                ).start()
                plan = stack.plan
                path = stack.tmp / "plan.json"
            else:
                stack = RoomStack(args.scenario).start()
                plan = {
                    "room_size": 2,
                    "devices": [{} for _ in range(args.devices)],
                    "conversations": [
                        {"id": g, "members": [2 * g, 2 * g + 1]} for g in range(args.devices // 2)
                    ],
                }
                path = Path(stack.dir) / "plan.json"
            path.write_text(json.dumps(plan))
            stack.restart_workers()
            settle_after_restart(args)
            extra = [
                "--idle",
                str(args.sockets),
                "--duration",
                str(args.hold),
                "--settle",
                str(args.settle),
                "--connect-concurrency",
                str(args.connect_concurrency),
                "--idle-ping",
                str(args.idle_ping),
            ]
            tag = f"s{args.scenario}-idle{args.sockets}-{target}{args.tag}"
            with CpuTrace([p for p in stack.pids() if p]) as trace:
                r = loadgen(
                    args,
                    target,
                    stack,
                    path,
                    extra,
                    tag,
                    {"scenario": args.scenario, "sweep": args.label or ""},
                )
            RESULTS.mkdir(exist_ok=True)
            trace_file = RESULTS / f"cputrace-{tag}.json"
            trace_file.write_text(json.dumps(trace.series()))
            print(f"per-second CPU by thread: {trace_file}", file=sys.stderr)
            print(
                json.dumps(
                    {
                        k: r[k]
                        for k in (
                            "tag",
                            "connected",
                            "open_at_end",
                            "presence_wrong_sockets",
                            "idle_cpu_pct_windows",
                            "connect",
                            "servers",
                            "errors",
                        )
                    }
                ),
                file=sys.stderr,
            )
        finally:
            if stack is not None:
                stack.stop()


def big_group(args):
    raise_fd_limit()
    n = args.members
    chat = room = None
    try:
        chat = ChatStack(args.scenario, seed=(n, n), tree=args.server_tree).start()
        plan = chat.plan
        path = chat.tmp / "plan.json"
        path.write_text(json.dumps(plan))
        room = RoomStack(args.scenario).start()
        room_path = Path(room.dir) / "plan.json"
        room_path.write_text(
            json.dumps(
                {"room_size": n, "devices": [{}] * n, "conversations": plan["conversations"]}
            )
        )
        frame = chat_frame_bytes(
            dict(plan, conversations=plan["conversations"][:1]), args.text_chars
        )
        print(f"envelope frame {frame} bytes for {n} devices", file=sys.stderr)
        common = [
            "--rate",
            str(args.rate),
            "--duration",
            str(args.duration),
            "--warmup",
            str(args.warmup),
            "--drain",
            str(args.drain),
            "--senders",
            str(args.senders),
            "--connect-concurrency",
            "50",
            "--settle",
            str(args.settle),
        ]
        for target, stack, p, extra in (
            ("room", room, room_path, ["--pad", str(max(0, frame - 60))]),
            ("chat", chat, path, ["--text-chars", str(args.text_chars), "--sync-check"]),
        ):
            if target not in args.targets:
                continue
            stack.restart_workers()
            settle_after_restart(args)
            r = loadgen(
                args,
                target,
                stack,
                p,
                common + extra,
                f"s{args.scenario}-group{n}-{target}-r{args.rate}{args.tag}",
                {"scenario": args.scenario, "sweep": args.label or ""},
            )
            print(one_line(r), file=sys.stderr)
    finally:
        for s in (chat, room):
            if s is not None:
                s.stop()


def profile(args):
    """py-spy on the (first) chat daphne while loadgen drives it; prints bench.profile's summary."""
    from . import profile as prof

    raise_fd_limit()
    chat = ChatStack(
        args.scenario, dict(e.split("=", 1) for e in args.server_env), seed=(args.devices, args.k)
    ).start()
    try:
        plan_path = chat.tmp / "plan.json"
        plan_path.write_text(json.dumps(chat.plan))
        pid = chat.stack.servers[0].pid
        cmd = [
            PY,
            "-m",
            "bench.loadgen",
            "--target",
            "chat",
            "--plan",
            str(plan_path),
            "--url-base",
            *chat.ws_bases,
            "--rate",
            str(args.rate),
            "--duration",
            str(args.seconds + 3),
            "--warmup",
            "2",
            "--text-chars",
            str(args.text_chars),
            "--tag",
            f"profile-s{args.scenario}-k{args.k}-r{args.rate}{args.tag}",
        ]
        if chat.cafile:
            cmd += ["--cafile", chat.cafile]
        for p in chat.pids():
            cmd += ["--server-pid", str(p)]
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"pyspy-s{args.scenario}-k{args.k}-r{args.rate}{args.tag}.txt"
        ready = chat.tmp / "ready"
        cmd += ["--ready-file", str(ready)]
        gen = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        # start sampling once the sockets are open and the warmup is over
        deadline = time.monotonic() + 600
        while not ready.exists() and gen.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
        spy = [
            shutil.which("py-spy") or str(Path(PY).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(args.seconds)),
            "--rate",
            "200",
            "--nonblocking",
            "--threads",
            "--format",
            "raw",
            "--output",
            str(out),
        ]
        subprocess.run(spy, capture_output=True, timeout=args.seconds + 60)
        stdout, stderr = gen.communicate(timeout=600)
        sys.stderr.write(stderr[-1500:])
        print(prof.summarize(out))
    finally:
        chat.stop()
