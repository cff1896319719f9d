#!/usr/bin/env python
"""Run the benchmark scenarios of docs/performance.md: start the servers, drive
bench/loadgen.py against the chat and against the minimal Channels room in the same run,
stop everything by PID, append one JSON line per run to bench/results/runs.jsonl and
print a table.

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
import asyncio
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.devstack import (
    BULK_LIMITS,
    REPO_ROOT,
    DaphneServer,
    DjangoStack,
    PostgresServer,
    RedisServer,
    TlsProxy,
    UnitDaphne,
)

from . import population, sysstat

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ROOM_DIR = (REPO_ROOT / ".." / "shared" / "anchors" / "channels_baseline").resolve()
PY = sys.executable


def bench_port() -> int:
    """A free port below the ephemeral range (32768-60999), so that no other process's
    free_port() or outgoing connection can take it between our check and daphne's bind
    (other sessions run tests on this machine at the same time)."""
    import random
    import socket

    for _ in range(200):
        port = random.randint(20000, 30000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-30000")


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


# ------------------------------------------------------------------------------ stacks
class Nginx(TlsProxy):
    """deploy/nginx/chat.conf in front of the given ports on bench ports (scripts.devstack's
    TlsProxy), with room for 2 sockets per client (client side + upstream side)."""

    def __init__(self, ports, static_root):
        super().__init__(
            ports,
            static_root,
            http_port=bench_port(),
            https_port=bench_port(),
            cert="python",
            worker_connections=4096,
        )

    @property
    def base(self):
        return self.ws_origin

    @property
    def http_base(self):
        return self.origin


# A fixed key for the bench stacks only (loopback, throwaway data): cached databases keep
# their sessions valid across runs.
BENCH_SECRET_KEY = "bench-only-not-secret-" + "k" * 40
CACHE = HERE / ".cache"


def schema_hash():
    import hashlib

    h = hashlib.sha256()
    for f in sorted(REPO_ROOT.glob("*/migrations/0*.py")):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:10]


class ChatStack:
    """The chat in one scenario's shape. With `seed` (n, k), the users, devices and
    conversations come from bench/.cache when made before (registration hashes passwords
    with Argon2, which makes a fresh population slow), else they are made over HTTP and
    then cached."""

    def __init__(
        self, scenario, extra_env=None, seed=None, tree=None, unit_daphne=False, workers=None
    ):
        self.scenario = scenario
        self.workers = workers or (2 if scenario == 3 else 1)
        # daphne as the systemd unit starts it (its flags); always so in scenario 3
        self.unit_daphne = unit_daphne or scenario == 3
        # the server code: this checkout, or another tree (e.g. `git archive REV | tar -x`)
        self.tree = Path(tree).resolve() if tree else REPO_ROOT
        self.redis = self.pg = self.nginx = self.stack = None
        self.extra_env = dict(extra_env or {})
        self.seed = seed
        self.plan = None
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-chat-"))

    def _seed_paths(self):
        n, k = self.seed
        kind = "pg" if self.scenario == 3 else "sqlite"
        stem = CACHE / f"population-{kind}-n{n}-k{k}-{schema_hash()}"
        return stem.with_suffix(".json"), stem.with_suffix(".sql" if kind == "pg" else ".sqlite3")

    def start(self):
        env = {
            "LOG_LEVEL": "INFO",
            "DJANGO_SECRET_KEY": BENCH_SECRET_KEY,
            **BULK_LIMITS,  # one address, thousands of users, idle sockets by the thousand
            **self.extra_env,
        }
        redis_url = db_url = None
        cached = None
        if self.seed:
            plan_file, db_file = self._seed_paths()
            if plan_file.exists() and db_file.exists():
                cached = (plan_file, db_file)
        if self.scenario >= 2:
            self.redis = RedisServer(port=bench_port()).start()
            redis_url = self.redis.url
        if self.scenario == 3:
            self.pg = PostgresServer(port=bench_port(), dbname="bench").start()
            db_url = self.pg.url
            if cached:
                psql = [
                    shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql",
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.pg.port),
                    "-U",
                    "postgres",
                    "-d",
                    "bench",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-f",
                    str(cached[1]),
                ]
                subprocess.run(psql, check=True, capture_output=True, timeout=300)
        else:
            db = self.tmp / "db.sqlite3"
            if cached:
                shutil.copy(cached[1], db)
            db_url = f"sqlite:///{db}"
        if self.scenario == 3:
            env.update(
                DJANGO_BEHIND_TLS_PROXY="1",
                DJANGO_HSTS_SECONDS="60",
                DJANGO_ALLOWED_HOSTS="127.0.0.1",
                LOG_FORMAT="json",
            )
        workers = self.workers
        # DjangoStack migrates (and collects static files for nginx); its daphne workers
        # are started here on bench ports (see bench_port).
        self.stack = DjangoStack(
            1,
            database_url=db_url,
            redis_url=redis_url,
            env=env,
            collectstatic=self.scenario == 3,
            cwd=self.tree,
        )
        self.stack.workers = 0
        self.stack.start()
        ports = [bench_port() for _ in range(workers)]
        cls, name = DaphneServer, "daphne"
        if self.unit_daphne:
            # the systemd unit's command line (--proxy-headers -v 0 --ping-interval 60 ...)
            cls, name = UnitDaphne, "unit-daphne"
        if self.scenario == 3:
            self.nginx = Nginx(ports, self.stack.env["DJANGO_STATIC_ROOT"])
            self.stack.env["DJANGO_CSRF_TRUSTED_ORIGINS"] = self.nginx.http_base
            os.chmod(self.stack.dir, 0o755)
        for i, port in enumerate(ports):
            server = cls(
                self.stack.env, self.stack.dir, port=port, cwd=self.tree, name=f"{name}-{i}"
            )
            self.stack.servers.append(server.start())
        if self.nginx:
            self.nginx.start()
        if self.seed:
            if cached:
                self.plan = json.loads(cached[0].read_text())
                print(f"population from {cached[1].name}", file=sys.stderr)
            else:
                n, k = self.seed
                self.plan = populate(self, n, k, prefix=f"k{k}n{n}u", tls_cafile=self.cafile)
                self.save_seed()
            self.plan["origin"] = self.http_base.replace("ws", "http", 1)
            self.plan["base_url"] = self.http_base
        return self

    def save_seed(self):
        plan_file, db_file = self._seed_paths()
        CACHE.mkdir(exist_ok=True)
        if self.scenario == 3:
            dump = [
                shutil.which("pg_dump") or "/usr/lib/postgresql/15/bin/pg_dump",
                "--no-owner",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.pg.port),
                "-U",
                "postgres",
                "-f",
                str(db_file) + ".tmp",
                "bench",
            ]
            subprocess.run(dump, check=True, capture_output=True, timeout=300)
        else:
            import sqlite3

            src = sqlite3.connect(self.stack.database_url.removeprefix("sqlite:///"))
            dst = sqlite3.connect(str(db_file) + ".tmp")
            src.backup(dst)
            dst.close()
            src.close()
        os.replace(str(db_file) + ".tmp", db_file)
        plan_file.write_text(json.dumps(self.plan))

    @property
    def http_base(self):
        return self.nginx.http_base if self.nginx else self.stack.base_url

    @property
    def ws_bases(self):
        return [self.nginx.base] if self.nginx else self.stack.ws_urls

    @property
    def cafile(self):
        return str(self.nginx.cert) if self.nginx else None

    def restart_workers(self):
        """Fresh worker processes and a fresh channel layer for the next run: daphne does
        not run the consumers' disconnect on SIGTERM, so a restarted worker's channels stay
        in the users' groups for group_expiry (24 h) and every later fan-out also writes
        to them (and logs "over capacity" once 2000 pile up). The anchor started a new
        Redis for every run; flushing it is the same."""
        for s in self.stack.servers:
            s.stop()
        if self.redis:
            self.redis.flushdb(0)
        for s in self.stack.servers:
            s.restart()

    def pids(self):
        pids = [s.pid for s in self.stack.servers]
        if self.redis:
            pids.append(self.redis.pid)
        if self.pg:
            pids.append(self.pg.postmaster_pid())
        if self.nginx:
            pids.append(self.nginx.pid)
        return pids

    def log_count(self, needle):
        n = 0
        for s in self.stack.servers:
            with contextlib.suppress(OSError):
                n += s.log_path.read_text(errors="replace").count(needle)
        return n

    def stop(self):
        if self.nginx:
            self.nginx.stop()
        if self.stack:
            self.stack.stop()
        if self.pg:
            self.pg.stop()
        if self.redis:
            self.redis.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


class RoomStack:
    """The minimal Channels room from ../shared/anchors/channels_baseline, run in place."""

    def __init__(self, scenario, workers=None):
        self.scenario = scenario
        self.workers = workers or (2 if scenario == 3 else 1)
        self.redis = self.nginx = None
        self.servers = []
        self.dir = Path(tempfile.mkdtemp(prefix="bench-room-"))

    def start(self):
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DJANGO_SETTINGS_MODULE", "REDIS_URL") and not k.startswith("PYTEST")
        }
        env["PYTHONUNBUFFERED"] = "1"
        if self.scenario >= 2:
            self.redis = RedisServer(port=bench_port()).start()
            env["REDIS_URL"] = self.redis.url
        ports = [bench_port() for _ in range(self.workers)]
        for i, port in enumerate(ports):
            server = DaphneServer(
                env,
                self.dir,
                port=port,
                app="baseline.asgi:application",
                cwd=ROOM_DIR,
                name=f"room-daphne-{i}",
            )
            self.servers.append(server.start())
        if self.scenario == 3:
            static = self.dir / "static"
            static.mkdir()
            self.nginx = Nginx(ports, static).start()
        return self

    @property
    def ws_bases(self):
        return [self.nginx.base] if self.nginx else [s.ws_url for s in self.servers]

    @property
    def cafile(self):
        return str(self.nginx.cert) if self.nginx else None

    def restart_workers(self):
        """As ChatStack.restart_workers: fresh workers and an empty Redis."""
        for s in self.servers:
            s.stop()
        if self.redis:
            self.redis.flushdb(0)
        for s in self.servers:
            s.restart()

    def pids(self):
        pids = [s.pid for s in self.servers]
        if self.redis:
            pids.append(self.redis.pid)
        if self.nginx:
            pids.append(self.nginx.pid)
        return pids

    def log_count(self, needle):
        n = 0
        for s in self.servers:
            with contextlib.suppress(OSError):
                n += s.log_path.read_text(errors="replace").count(needle)
        return n

    def stop(self):
        if self.nginx:
            self.nginx.stop()
        for s in self.servers:
            s.stop()
        if self.redis:
            self.redis.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------------------ runs
def populate(stack, n, k, prefix, tls_cafile=None, key_offset=0):
    import ssl

    tls = ssl.create_default_context(cafile=tls_cafile) if tls_cafile else None
    t = time.monotonic()
    plan = asyncio.run(
        population.populate(stack.http_base, n, k, prefix=prefix, tls=tls, key_offset=key_offset)
    )
    print(
        f"populated {n} users / {len(plan['conversations'])} conversations of {k} in "
        f"{time.monotonic() - t:.1f} s",
        file=sys.stderr,
    )
    return plan


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
                time.sleep(1.0)
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
                    time.sleep(1.0)
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


def idle(args):
    hard = raise_fd_limit()
    print(f"fd limit {hard}", file=sys.stderr)
    for target in args.targets:
        stack = None
        try:
            if target == "chat":
                stack = ChatStack(
                    args.scenario, seed=(args.devices, 2), unit_daphne=args.unit_daphne
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
            time.sleep(2)
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
            r = loadgen(
                args,
                target,
                stack,
                path,
                extra,
                f"s{args.scenario}-idle{args.sockets}-{target}{args.tag}",
                {"scenario": args.scenario, "sweep": args.label or ""},
            )
            print(
                json.dumps(
                    {
                        k: r[k]
                        for k in ("tag", "connected", "open_at_end", "connect", "servers", "errors")
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
        chat = ChatStack(args.scenario, seed=(n, n)).start()
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
        ]
        for target, stack, p, extra in (
            ("room", room, room_path, ["--pad", str(max(0, frame - 60))]),
            ("chat", chat, path, ["--text-chars", str(args.text_chars), "--sync-check"]),
        ):
            stack.restart_workers()
            time.sleep(1)
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
        default=20,
        help="s after connecting before sending (presence frames of 500 connects)",
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
