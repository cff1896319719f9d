"""A Django stack: `manage.py migrate` once, then daphne workers sharing one environment
(database, Redis, static files and var/ in a temp dir of the stack's own)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from .base import (
    COMMAND_TIMEOUT,
    REPO_ROOT,
    START_TIMEOUT,
    ServiceError,
    make_tmp,
    register,
    remove_dir,
    unregister,
)
from .daphne import DaphneServer

# Every client of a test stack comes from 127.0.0.1, so the per-address limits (meant for
# one person, or one NAT) would count a whole test run as one client: stacks raise them.
# The per-user limits keep their defaults; a test of a limit passes its own env.
SHARED_ADDRESS_LIMITS = {"REGISTER_RATE": "100000/h", "LOGIN_RATE": "100000/m"}
# For harnesses that also register, link, send or connect in bulk per user (bench).
BULK_LIMITS = {
    **SHARED_ADDRESS_LIMITS,
    "DEVICE_REGISTER_RATE": "100000/h",
    "LINK_REQUEST_RATE": "100000/h",
    "REST_SEND_RATE": "1000000/m",
    "MAX_SOCKETS_PER_USER": "100000",
    "MAX_SOCKETS_PER_DEVICE": "100000",
}


def stack_env(
    database_url: str, redis_url: str | None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment a stack's processes get: ours plus the DJANGO_* / URL settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="chatsite.settings",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_DEBUG="0",
        PYTHONUNBUFFERED="1",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra or {})
    return env


def migrate_database(database_url: str, work_dir: Path) -> None:
    """`manage.py migrate` a database (e.g. a template that stacks copy), with var/ and
    static files in `work_dir`; raises ServiceError on failure."""
    own = {"DJANGO_STATIC_ROOT": str(work_dir / "staticfiles"), "CHAT_VAR_DIR": str(work_dir)}
    env = stack_env(database_url, None, own)
    argv = [sys.executable, "manage.py", "migrate", "--noinput"]
    try:
        done = subprocess.run(
            argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        raise ServiceError(f"timed out after {COMMAND_TIMEOUT}s: manage.py migrate") from e
    if done.returncode != 0:
        raise ServiceError(
            f"manage.py migrate exited {done.returncode}\n{done.stdout}{done.stderr}"
        )


def migrated_sqlite_template(work_dir: Path) -> Path:
    """A migrated SQLite file in `work_dir` for stacks to copy (DjangoStack(sqlite_template=))."""
    path = Path(work_dir) / "template.sqlite3"
    if not path.exists():
        migrate_database(f"sqlite:///{path}", Path(work_dir))
        # Fold the write-ahead log into the file, so that copying the file copies it all.
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


class DjangoStack:
    """`manage.py migrate` once, then `workers` daphne processes sharing one env.

    With no database_url, an SQLite file in the stack's temp dir is used
    (sqlite:////abs/path/db.sqlite3): a copy of `sqlite_template` if given (a file
    migrated by `migrated_sqlite_template`), else migrated here. `migrated=True` says the
    database_url is already migrated (a copy of `PostgresServer.migrated_template()`): no
    `manage.py migrate` either. With no redis_url, REDIS_URL is unset.
    DJANGO_STATIC_ROOT and CHAT_VAR_DIR point into the temp dir (collectstatic=True
    fills the former), and SHARED_ADDRESS_LIMITS are raised; `env` overrides any of these.
    """

    def __init__(
        self,
        workers: int = 1,
        database_url: str | None = None,
        redis_url: str | None = None,
        env: Mapping[str, str] | None = None,
        collectstatic: bool = False,
        cwd: Path = REPO_ROOT,
        *,
        sqlite_template: Path | None = None,
        migrated: bool = False,
        worker_class: type[DaphneServer] = DaphneServer,
        ports: list[int] | None = None,
    ) -> None:
        if workers < 0:
            raise ValueError("workers must be >= 0")
        self.worker_class = worker_class
        self.ports = list(ports or [])
        self.workers = workers
        self.database_url = database_url
        self.sqlite_template = sqlite_template if database_url is None else None
        self.migrated = migrated
        self.redis_url = redis_url
        self.extra_env = dict(env or {})
        self.collectstatic = collectstatic
        self.cwd = cwd
        self.dir: Path | None = None
        self.env: dict[str, str] = {}
        self.servers: list[DaphneServer] = []

    def start(self, timeout: float = START_TIMEOUT) -> DjangoStack:
        """Migrate, then start the workers and wait for each port; cleans up on failure."""
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> DjangoStack:
        self.dir = make_tmp("stack")
        register(self)
        migrated = self.migrated
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.dir / 'db.sqlite3'}"
            if self.sqlite_template is not None:
                # migrate's own output, byte for byte, without a Django start-up to make it
                shutil.copyfile(self.sqlite_template, self.dir / "db.sqlite3")
                migrated = True
        # Static files and var/ in the stack's dir: a stale staticfiles/ in the repo
        # must not switch the stack to the manifest storage.
        own = {
            "DJANGO_STATIC_ROOT": str(self.dir / "staticfiles"),
            "CHAT_VAR_DIR": str(self.dir / "var"),
        }
        extra = {**SHARED_ADDRESS_LIMITS, **own, **self.extra_env}
        self.env = stack_env(self.database_url, self.redis_url, extra)
        if not migrated:
            self.manage("migrate", "--noinput")
        if self.collectstatic:
            # Made first: settings pick the manifest storage only if STATIC_ROOT exists.
            Path(self.env["DJANGO_STATIC_ROOT"]).mkdir(parents=True, exist_ok=True)
            self.manage("collectstatic", "--noinput")
        for _ in range(self.workers):
            self.add_worker(timeout=timeout)
        return self

    def add_worker(self, port: int | None = None, timeout: float = START_TIMEOUT) -> DaphneServer:
        """Start one more worker (`worker_class`) with the stack's env, on `port` or the next
        of `ports` or a free one, and return it once it listens."""
        if port is None and len(self.servers) < len(self.ports):
            port = self.ports[len(self.servers)]
        name = f"{self.worker_class.kind}-{len(self.servers)}"
        server = self.worker_class(self.env, self.dir, port=port, cwd=self.cwd, name=name)
        self.servers.append(server)
        return server.start(timeout)

    def manage(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> str:
        """Run `python manage.py ARGS` with the stack's env; return its output, raise on failure."""
        argv = [sys.executable, "manage.py", *args]
        try:
            done = subprocess.run(
                argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as e:
            raise ServiceError(f"timed out after {timeout}s: manage.py {' '.join(args)}") from e
        output = done.stdout + done.stderr
        with (self.dir / "manage.log").open("a") as log:
            log.write(f"$ {' '.join(argv)}\n{output}\n")
        if done.returncode != 0:
            raise ServiceError(f"manage.py {' '.join(args)} exited {done.returncode}\n{output}")
        return output

    @property
    def base_url(self) -> str:
        return self.servers[0].base_url

    @property
    def ws_url(self) -> str:
        return self.servers[0].ws_url

    @property
    def base_urls(self) -> list[str]:
        return [s.base_url for s in self.servers]

    @property
    def ws_urls(self) -> list[str]:
        return [s.ws_url for s in self.servers]

    def kill(self, worker: int = 0) -> None:
        """SIGKILL one worker (simulates a crash)."""
        self.servers[worker].kill()

    def restart(self, worker: int = 0) -> None:
        """Restart one worker on its port."""
        self.servers[worker].restart()

    def stop(self) -> None:
        """Stop every worker and remove the temp dir (SQLite file included)."""
        for server in self.servers:
            server.stop()
        unregister(self)
        remove_dir(self.dir)
        self.dir = None

    def __enter__(self) -> DjangoStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
