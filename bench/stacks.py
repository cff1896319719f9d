"""The benchmark's servers (docs/performance.md, "The harness"): the chat and the minimal
Channels room in each scenario's shape, started with scripts.devstack and stopped by PID.

Scenario 1: one daphne, embedded defaults (SQLite, in-memory layer); 2: one daphne, Redis
layer (SQLite); 3: two daphne workers (the systemd unit's command line), Redis,
PostgreSQL, behind nginx (deploy/nginx/chat.conf, TLS). The room runs the same shape.
All sockets are on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
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

from . import population

HERE = Path(__file__).resolve().parent
ROOM_DIR = (REPO_ROOT / ".." / "shared" / "anchors" / "channels_baseline").resolve()


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


def proxy(ports, static_root) -> TlsProxy:
    """nginx with deploy/nginx/chat.conf in front of `ports` on bench ports, with room for
    2 sockets per client (client side + upstream side)."""
    return TlsProxy(
        ports,
        static_root,
        http_port=bench_port(),
        https_port=bench_port(),
        cert="python",
        worker_connections=4096,
    ).start()


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
        stem = CACHE / f"population-{kind}-n{n}-k{k}-{schema_hash()}{population.CACHE_TAG}"
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
        # DjangoStack migrates (and collects static files for nginx); its daphne workers
        # (the systemd unit's command line with unit_daphne: --proxy-headers -v 0
        # --ping-interval 60 ...) start below on bench ports (see bench_port), once nginx's
        # origin is in their env.
        ports = [bench_port() for _ in range(self.workers)]
        if self.scenario < 3 and len(ports) > 1:  # the plan names worker 0's origin
            origins = ",".join(f"http://127.0.0.1:{port}" for port in ports)
            env.setdefault("DJANGO_CSRF_TRUSTED_ORIGINS", origins)
        self.stack = DjangoStack(
            0,
            database_url=db_url,
            redis_url=redis_url,
            env=env,
            collectstatic=self.scenario == 3,
            cwd=self.tree,
            worker_class=UnitDaphne if self.unit_daphne else DaphneServer,
            ports=ports,
        ).start()
        if self.scenario == 3:
            os.chmod(self.stack.dir, 0o755)
            self.nginx = proxy(ports, self.stack.env["DJANGO_STATIC_ROOT"])
            self.stack.env["DJANGO_CSRF_TRUSTED_ORIGINS"] = self.nginx.origin
        for _ in ports:
            self.stack.add_worker()
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
        return self.nginx.origin if self.nginx else self.stack.base_url

    @property
    def ws_bases(self):
        return [self.nginx.ws_origin] if self.nginx else self.stack.ws_urls

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
            self.nginx = proxy(ports, static)
        return self

    @property
    def ws_bases(self):
        return [self.nginx.ws_origin] if self.nginx else [s.ws_url for s in self.servers]

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
