#!/usr/bin/env python
"""Run the benchmark scenarios of docs/performance.md: start the servers, drive
bench/loadgen.py against the chat and against the minimal Channels room in the same run,
stop everything by PID, append one JSON line per run to bench/results/runs.jsonl and
print a table. The command line; the servers are bench/stacks.py, the scenarios
bench/scenarios.py.

    .venv/bin/python -m bench.run sweep --scenario 2 --k 2 --rates 100 200 300 400
    .venv/bin/python -m bench.run idle --sockets 10000
    .venv/bin/python -m bench.run big-group --members 500 --rate 1
    .venv/bin/python -m bench.run table            # the tables from runs.jsonl

Scenarios: 1 = one daphne, embedded defaults (SQLite, in-memory layer); 2 = one daphne,
Redis layer (SQLite); 3 = two daphne workers (the systemd unit's command line), Redis,
PostgreSQL, behind nginx (deploy/nginx/chat.conf, TLS). The room runs the same shape:
1 = one daphne + in-memory layer, 2 = one daphne + Redis, 3 = two daphnes + Redis + nginx.
All sockets are on 127.0.0.1; every child is started here and stopped by its PID.
"""

from __future__ import annotations

import argparse

from .scenarios import RESULTS, big_group, idle, profile, sweep


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp):
        sp.add_argument("--scenario", type=int, choices=(1, 2, 3), default=2)
        sp.add_argument("--targets", nargs="+", default=["room", "chat"])
        sp.add_argument("--tag", default="")
        sp.add_argument("--label", default="")
        sp.add_argument("--out", default=str(RESULTS / "runs.jsonl"))
        sp.add_argument(
            "--quiet-limit",
            type=float,
            default=40,
            help="wait before a run until the machine is below this %% busy",
        )
        sp.add_argument("--quiet-wait", type=float, default=0, help="max s to wait for that")
        sp.add_argument(
            "--other-limit",
            type=float,
            default=25,
            help="%% of a core used by others that marks a run contaminated",
        )
        sp.add_argument("--text-chars", type=int, default=100)
        sp.add_argument("--server-env", nargs="*", default=[], metavar="K=V")
        sp.add_argument("--server-tree", help="run the chat from this source tree (before/after)")

    s = sub.add_parser("sweep", help="step the offered rate (chat and room)")
    common(s)
    s.add_argument("--k", type=int, default=2)
    s.add_argument("--devices", type=int, default=200)
    s.add_argument(
        "--workers",
        type=int,
        default=None,
        help="daphne workers (default: 2 in scenario 3, else 1)",
    )
    s.add_argument("--rates", type=int, nargs="+", default=[100, 200, 300, 400, 600, 800])
    s.add_argument("--duration", type=float, default=10)
    s.add_argument("--warmup", type=float, default=3)
    s.add_argument("--drain", type=float, default=5)
    s.add_argument("--refine", action="store_true")
    s.add_argument("--refine-min", type=int, default=20)
    s.add_argument("--confirm", type=int, default=0, help="repeat both boundary runs N times")
    s.add_argument("--no-restart", dest="restart", action="store_false")
    s.add_argument(
        "--attempts",
        type=int,
        default=3,
        help="runs per rate while failures coincide with others' CPU use",
    )
    s.add_argument("--room-frame", type=int, default=1500)
    s.set_defaults(func=sweep)

    s = sub.add_parser("idle", help="idle authenticated sockets on one daphne")
    common(s)
    s.add_argument("--sockets", type=int, default=10000)
    s.add_argument("--devices", type=int, default=200)
    s.add_argument("--hold", type=float, default=30)
    s.add_argument("--settle", type=float, default=5)
    s.add_argument("--connect-concurrency", type=int, default=50)
    s.add_argument(
        "--idle-ping",
        type=float,
        default=0,
        help="chat sockets send the browser's keep-alive every N s (the browser: 25)",
    )
    s.add_argument("--workers", type=int, default=None, help="daphne workers (default 1)")
    s.add_argument(
        "--unit-daphne",
        action="store_true",
        help="start daphne with the systemd unit's flags (--ping-interval 60 ...)",
    )
    s.set_defaults(func=idle)

    s = sub.add_parser("big-group", help="one group of --members devices")
    common(s)
    s.add_argument("--members", type=int, default=500)
    s.add_argument("--senders", type=int, default=10)
    s.add_argument("--rate", type=float, default=1)
    s.add_argument("--duration", type=float, default=10)
    s.add_argument("--warmup", type=float, default=2)
    s.add_argument("--drain", type=float, default=15)
    s.add_argument(
        "--settle",
        type=float,
        default=2,
        help="s of quiet before sending, after the chat's sockets heard every peer online",
    )
    s.set_defaults(func=big_group)

    s = sub.add_parser("profile", help="py-spy of one chat worker under load")
    common(s)
    s.add_argument("--k", type=int, default=2)
    s.add_argument("--devices", type=int, default=200)
    s.add_argument("--rate", type=int, default=150)
    s.add_argument("--seconds", type=float, default=10)
    s.set_defaults(func=profile)

    s = sub.add_parser("table", help="print the tables from a runs.jsonl")
    s.add_argument("--out", default=str(RESULTS / "runs.jsonl"))
    s.add_argument("--label", default=None)
    s.set_defaults(func=lambda a: __import__("bench.report", fromlist=["x"]).main(a))

    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
