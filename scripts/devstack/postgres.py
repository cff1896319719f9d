"""A throwaway PostgreSQL cluster on 127.0.0.1, run by its own ``pg_ctl``."""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

from .base import (
    COMMAND_TIMEOUT,
    START_TIMEOUT,
    STOP_TIMEOUT,
    ServiceError,
    address_in_use,
    free_port,
    log_tail,
    make_tmp,
    register,
    remove_dir,
    unregister,
)

PG_BINARIES = ("initdb", "pg_ctl", "createdb")


def find_pg_bin(name: str) -> str | None:
    """Path of a PostgreSQL binary: PATH first, then the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    candidates.sort(key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return candidates[-1] if candidates else None


def postgres_unavailable_reason() -> str | None:
    """Why PostgresServer cannot run here, or None if it can."""
    missing = [b for b in PG_BINARIES if find_pg_bin(b) is None]
    if missing:
        return f"PostgreSQL binaries not found: {', '.join(missing)} (install postgresql-15)"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root but there is no 'postgres' user to run initdb as"
    return None


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with trust auth for user postgres.

    `.url` is postgresql://postgres@127.0.0.1:P/DBNAME. As root, initdb and pg_ctl run
    as the `postgres` user (PostgreSQL refuses to run as root). Started and stopped by
    `pg_ctl -w` (PostgreSQL's own readiness wait), not by mirakuru: the postmaster
    detaches from pg_ctl, and `pg_ctl stop -m fast` is how it is stopped cleanly.
    """

    def __init__(self, port: int | None = None, dbname: str = "chat_test") -> None:
        reason = postgres_unavailable_reason()
        if reason:
            raise ServiceError(reason)
        self.bins = {b: find_pg_bin(b) for b in PG_BINARIES}
        self._fixed_port = port is not None
        self.port = port or 0
        self.dbname = dbname
        self.dir: Path | None = None
        self._migrated = False

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def sock_dir(self) -> Path:
        return self.dir / "sock"

    @property
    def log_path(self) -> Path:
        return self.dir / "postgres.log"

    @property
    def url(self) -> str:
        return self.url_for(self.dbname)

    def url_for(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    @property
    def pid(self) -> int | None:
        """The postmaster's PID, None when it is not running."""
        if self.dir is None:
            return None
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def postmaster_pid(self) -> int | None:
        """The postmaster's PID (the same as `pid`)."""
        return self.pid

    def _as_pg(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def _chown_pg(self, *paths: Path) -> None:
        if os.geteuid() == 0:
            for p in paths:
                shutil.chown(p, user="postgres", group="postgres")

    def _run(self, argv: list[str], timeout: float = COMMAND_TIMEOUT) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"\n$ {' '.join(argv)}\n".encode())
            log.flush()
            try:
                rc = subprocess.run(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.dir,
                    timeout=timeout,
                ).returncode
            except subprocess.TimeoutExpired as e:
                raise ServiceError(f"timed out: {argv}\n{log_tail(self.log_path)}") from e
        if rc != 0:
            raise ServiceError(f"exit {rc}: {argv}\n{log_tail(self.log_path)}")

    def start(self, timeout: float = START_TIMEOUT) -> PostgresServer:
        """initdb, start the server (pg_ctl -w) and create `dbname`; cleans up on failure."""
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> PostgresServer:
        # /tmp, so that the postgres user can reach it when we are root.
        self._migrated = False
        self.dir = make_tmp("pg", parent="/tmp")
        self.dir.chmod(0o755)
        self.data_dir.mkdir(mode=0o700)
        self.sock_dir.mkdir(mode=0o700)
        self.log_path.touch()
        self._chown_pg(self.data_dir, self.sock_dir, self.log_path)
        register(self)
        initdb = [self.bins["initdb"], "-D", str(self.data_dir), "-A", "trust", "-U", "postgres"]
        self._run(self._as_pg([*initdb, "-E", "UTF8", "--no-locale", "--no-sync"]))
        for _attempt in range(3):
            if not self._fixed_port:
                self.port = free_port()
            try:
                self.resume(timeout)
                break
            except ServiceError:
                if self._fixed_port or not address_in_use(self.log_path):
                    raise
        else:
            raise ServiceError(f"postgres: no free port after 3 tries\n{log_tail(self.log_path)}")
        self.create_database(self.dbname)
        return self

    def halt(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server, keeping its data (`pg_ctl stop -m fast`: connections are cut,
        committed work kept; "immediate" with this cluster's fsync=off would drop commits)."""
        argv = [self.bins["pg_ctl"], "-D", str(self.data_dir), "-m", "fast", "-w"]
        self._run(self._as_pg([*argv, "-t", str(int(timeout)), "stop"]), timeout + 5)

    def resume(self, timeout: float = START_TIMEOUT) -> None:
        """Start the server on its port with its data, and wait until it accepts (pg_ctl -w)."""
        opts = (
            f"-p {self.port} -k {self.sock_dir} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        argv = [self.bins["pg_ctl"], "-D", str(self.data_dir), "-l", str(self.log_path)]
        argv += ["-o", opts, "-w", "-t", str(int(timeout)), "start"]
        self._run(self._as_pg(argv), timeout=timeout + 10)

    def bounce(self, down_for: float = 0.0, timeout: float = START_TIMEOUT) -> None:
        """A database outage of `down_for` seconds: `halt()`, then `resume()` on the same
        port with the same data."""
        self.halt()
        time.sleep(down_for)  # the outage's length, not a wait for anything
        self.resume(timeout)

    def create_database(self, dbname: str, template: str | None = None) -> str:
        """Create database `dbname` (a copy of database `template` if given) and return its URL."""
        argv = [self.bins["createdb"], "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        if template:
            argv += ["-T", template]
        self._run([*argv, dbname], timeout=60)
        return self.url_for(dbname)

    def new_database(self, prefix: str = "db", template: str | None = None) -> str:
        """Create a database with a fresh random name (a copy of `template` if given) and
        return its URL."""
        return self.create_database(f"{prefix}_{secrets.token_hex(4)}", template)

    def migrated_template(self) -> str:
        """Name of a database of this cluster holding the project's migrated schema, made on
        the first call (one `manage.py migrate`); `new_database(template=...)` copies it in
        a moment. Nothing may stay connected to it: it is only ever copied."""
        from .stack import migrate_database

        name = "migrated_template"
        if not self._migrated:
            self.create_database(name)
            work_dir = make_tmp("migrate")
            try:
                migrate_database(self.url_for(name), work_dir)
            finally:
                remove_dir(work_dir)
            self._migrated = True
        return name

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """pg_ctl stop -m fast; SIGKILL the postmaster if that fails; remove the temp dir."""
        if self.dir is None:
            return
        pid = self.pid
        if pid is not None:
            try:
                self.halt(timeout)
            except ServiceError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        unregister(self)
        remove_dir(self.dir)
        self.dir = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
