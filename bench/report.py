"""Tables from bench/results/runs.jsonl: every run, then per scenario the highest passing
rate of the chat and of the room and their ratio.

    .venv/bin/python -m bench.run table [--label after] [--out FILE]
"""

from __future__ import annotations

import json
from collections import defaultdict


def load(path, label=None):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if label is None or r.get("sweep") == label:
                    rows.append(r)
    return rows


def fmt_srv(r):
    return " + ".join(f"{s['comm'][:7]} {s['cpu_pct']:.0f}%" for s in r.get("servers", []))


def runs_table(rows):
    out = [
        "| run | label | pass | offered/s | sent | acked | lost | delivered/s | p50 / p99 ms "
        "| ack p99 | server CPU ms/msg | server CPU | loadgen | not ours | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("mode") != "load":
            continue
        L = r["latency_ms"]
        out.append(
            f"| {r['tag']} | {r.get('sweep', '')} | {'yes' if r['pass'] else 'NO'} | {r['rate']:g} "
            f"| {r['sent']} | {r['acked'] if r['acked'] is not None else '-'} | {r['lost']} "
            f"| {r['delivered_per_s']} | {L['p50']} / {L['p99']} | {r['ack_ms']['p99'] or '-'} "
            f"| {r['server_cpu_ms_per_msg']} | {fmt_srv(r)} | {r['loadgen_cpu_pct']}% "
            f"| {r['other_cpu_pct']}%{' C' if r.get('contaminated') else ''} "
            f"| {r['errors'] or '-'}{' sync:' + str(r['sync_check']) if r.get('sync_check') else ''} |"
        )
    return "\n".join(out)


def knees(rows):
    """(scenario, k, label) -> target -> (best passing rate, runs at it, first failing rate)."""
    by = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.get("mode") != "load":
            continue
        by[(r["scenario"], r["room_size"], r.get("sweep", ""))][r["target"]].append(r)
    out = {}
    for key, targets in by.items():
        out[key] = {}
        for target, runs in targets.items():
            rates = defaultdict(list)
            for r in runs:
                rates[r["rate"]].append(r)
            best = broke = None
            for rate in sorted(rates):
                rs = rates[rate]
                # a rate passes when at least one run passed and every uncontaminated run did
                ok = any(r["pass"] for r in rs) and all(
                    r["pass"] or r.get("contaminated") for r in rs
                )
                if ok and broke is None:
                    best = rate
                elif not ok and broke is None:
                    broke = rate
            out[key][target] = (best, rates.get(best, []), broke, rates.get(broke, []))
    return out


def knee_table(rows):
    out = [
        "| scenario | k | label | room: highest R passing (delivered/s, p99 ms, CPU ms/msg) "
        "| chat: highest R passing (delivered/s, p99 ms, CPU ms/msg) | chat / room | "
        "first failing R (room; chat) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (sc, k, label), t in sorted(knees(rows).items()):

        def cell(target, t=t):
            if target not in t:
                return "-", None
            best, runs, broke, bruns = t[target]
            if best is None:
                return f"none (first fail {broke})", None
            passed = [r for r in runs if r["pass"]]
            p99 = ", ".join(str(r["latency_ms"]["p99"]) for r in passed)
            cpu = ", ".join(str(r["server_cpu_ms_per_msg"]) for r in passed)
            return (
                f"**{best:g}** ({passed[0]['delivered_per_s']}; p99 {p99}; {cpu}; "
                f"{len(passed)}/{len(runs)} runs)",
                best,
            )

        room, rb = cell("room")
        chat, cb = cell("chat")
        ratio = f"{cb / rb:.2f}x" if rb and cb else "-"
        fails = "; ".join(
            f"{t[x][2]:g}" if x in t and t[x][2] is not None else "-" for x in ("room", "chat")
        )
        out.append(f"| {sc} | {k} | {label} | {room} | {chat} | {ratio} | {fails} |")
    return "\n".join(out)


def idle_table(rows):
    out = [
        "| run | sockets | connected / open at end | connect wall s (p99 ms) | process "
        "| RSS before -> after (MB) | kB / socket | idle CPU % | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("mode") != "idle":
            continue
        for s in r["servers"]:
            out.append(
                f"| {r['tag']} | {r['sockets']} | {r['connected']} / {r['open_at_end']} "
                f"| {r['connect']['wall_s']} ({r['connect']['p99_ms']}) | {s['comm']} "
                f"| {s['rss_kb_before'] / 1024:.0f} -> {s['rss_kb_after'] / 1024:.0f} "
                f"| {s['rss_kb_per_socket']} | {s['idle_cpu_pct']} | {r['errors'] or '-'} |"
            )
    return "\n".join(out)


def main(args):
    rows = load(args.out, args.label)
    print(knee_table(rows))
    print()
    print(runs_table(rows))
    if any(r.get("mode") == "idle" for r in rows):
        print()
        print(idle_table(rows))
