"""Real server processes on loopback for tests: redis-server, PostgreSQL, daphne.

Each service runs as a child process with its own temp dir and log file, waits
until it answers before `start()` returns, and is stopped by PID (SIGTERM, then
SIGKILL after a timeout). Every start and wait is bounded in time. Services
still running at interpreter exit are stopped by an atexit hook.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
COMMAND_TIMEOUT = 180.0
KEEP_DIRS_ENV = "TEST_KEEP_SERVICE_DIRS"

_live: dict[int, object] = {}


class ServiceError(RuntimeError):
    """A service failed to start, answer or stop in time."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Return True if a TCP connection to host:port is accepted."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def holds_listener(pid: int, port: int) -> bool:
    """True if process `pid` holds the socket listening on TCP `port` (Linux: /proc), so a
    server that answers on the port is ours and not another test process's that picked the
    same free port (pytest-xdist runs several). Where /proc cannot tell, True."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local address "0100007F:1F90", state 0A = LISTEN, inode in column 10
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return not Path("/proc/net/tcp").exists()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return True  # not Linux, or not ours to inspect
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
    return False


def log_tail(path: Path | str, lines: int = 40) -> str:
    """Return the last `lines` lines of a log file ('' if it is missing)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def terminate(proc: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> None:
    """Stop a child: SIGTERM, then SIGKILL if it has not exited within `timeout`."""
    if proc.poll() is None:
        try:
            proc.terminate()
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        except ProcessLookupError:
            pass  # already reaped


def _make_tmp(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"e2ee-{prefix}-"))


def _remove_dir(path: Path | None) -> None:
    if path is not None and not os.environ.get(KEEP_DIRS_ENV):
        shutil.rmtree(path, ignore_errors=True)


def _register(service: object) -> None:
    _live[id(service)] = service


def _unregister(service: object) -> None:
    _live.pop(id(service), None)


@atexit.register
def stop_all() -> None:
    """Stop every service started by this module that is still registered."""
    for service in list(_live.values()):
        with contextlib.suppress(Exception):  # best effort at exit
            service.stop()  # type: ignore[attr-defined]


def _spawn(argv: list[str], log_path: Path, **kwargs) -> subprocess.Popen:
    """Start argv with stdout+stderr appended to log_path and no stdin."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs
        )


def _address_in_use(log_path: Path) -> bool:
    text = log_tail(log_path, 20).lower()
    return "address already in use" in text or "could not bind" in text


# --------------------------------------------------------------------------- redis


def find_redis_server() -> str | None:
    """Path of redis-server, from PATH or /usr/sbin / /usr/bin."""
    found = shutil.which("redis-server")
    if found:
        return found
    for candidate in ("/usr/sbin/redis-server", "/usr/bin/redis-server"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def redis_pipeline(
    port: int, *commands: list[str], host: str = "127.0.0.1", timeout: float = 2.0
) -> list[bytes]:
    """Send RESP commands on one connection; return each reply's first line (e.g. b'+PONG')."""
    payload = b""
    for args in commands:
        payload += f"*{len(args)}\r\n".encode()
        for arg in args:
            data = arg.encode()
            payload += b"$%d\r\n%s\r\n" % (len(data), data)
    reply = b""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(payload)
        while reply.count(b"\r\n") < len(commands):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.split(b"\r\n")[: len(commands)]


def redis_command(port: int, *args: str, timeout: float = 2.0) -> bytes:
    """Send one RESP command; return the reply's first line."""
    return redis_pipeline(port, list(args), timeout=timeout)[0]


class RedisServer:
    """redis-server on 127.0.0.1 with no persistence; `.url` is redis://127.0.0.1:P/0."""

    def __init__(self, port: int | None = None) -> None:
        self.binary = find_redis_server()
        if self.binary is None:
            raise ServiceError("redis-server not found (run scripts/install-system-deps.sh)")
        self._fixed_port = port is not None
        self.port = port or 0
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        assert self.dir is not None, "not started"
        return self.dir / "redis.log"

    @property
    def url(self) -> str:
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        """URL of logical database `db` on this server."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> RedisServer:
        """Start and wait until PING answers PONG; retries on a port clash; cleans up on failure."""
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> RedisServer:
        if self.dir is None:
            self.dir = _make_tmp("redis")
        for _attempt in range(3):
            if not self._fixed_port:
                self.port = free_port()
            self._launch()
            try:
                self._wait_ready(timeout)
                _register(self)
                return self
            except ServiceError:
                terminate(self.proc)
                if self._fixed_port or not _address_in_use(self.log_path):
                    raise
        raise ServiceError(f"redis-server: no free port after 3 tries\n{log_tail(self.log_path)}")

    def _launch(self) -> None:
        argv = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--daemonize", "no",
        ]  # fmt: skip
        self.proc = _spawn(argv, self.log_path, cwd=self.dir)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(
                    f"redis-server exited with {self.proc.returncode}\n{log_tail(self.log_path)}"
                )
            try:
                if redis_command(self.port, "PING", timeout=1.0) == b"+PONG" and (
                    holds_listener(self.proc.pid, self.port)
                ):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise ServiceError(f"redis-server not ready in {timeout}s\n{log_tail(self.log_path)}")

    def flushdb(self, db: int) -> None:
        """Empty logical database `db`."""
        replies = redis_pipeline(self.port, ["SELECT", str(db)], ["FLUSHDB"])
        if replies != [b"+OK", b"+OK"]:
            raise ServiceError(f"redis SELECT/FLUSHDB {db} failed: {replies}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (then SIGKILL) the server and remove its temp dir."""
        if self.proc is not None:
            terminate(self.proc, timeout)
        _unregister(self)
        _remove_dir(self.dir)
        self.dir = None

    def kill(self) -> None:
        """SIGKILL the server (simulates a crash); the port stays reserved for restart()."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)

    def restart(self, timeout: float = START_TIMEOUT) -> RedisServer:
        """Stop (if running) and start again on the same port; data is gone."""
        if self.proc is not None:
            terminate(self.proc)
        self._launch()
        self._wait_ready(timeout)
        _register(self)
        return self

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- postgres


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
    missing = [b for b in ("initdb", "pg_ctl", "createdb") if find_pg_bin(b) is None]
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
    as the `postgres` user (PostgreSQL refuses to run as root).
    """

    def __init__(self, port: int | None = None, dbname: str = "chat_test") -> None:
        reason = postgres_unavailable_reason()
        if reason:
            raise ServiceError(reason)
        self.bins = {b: find_pg_bin(b) for b in ("initdb", "pg_ctl", "createdb")}
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
        self.dir = Path(tempfile.mkdtemp(prefix="e2ee-pg-", dir="/tmp"))
        self.dir.chmod(0o755)
        self.data_dir.mkdir(mode=0o700)
        self.sock_dir.mkdir(mode=0o700)
        self.log_path.touch()
        self._chown_pg(self.data_dir, self.sock_dir, self.log_path)
        _register(self)
        initdb = [self.bins["initdb"], "-D", str(self.data_dir), "-A", "trust", "-U", "postgres"]
        self._run(self._as_pg([*initdb, "-E", "UTF8", "--no-locale", "--no-sync"]))
        for _attempt in range(3):
            if not self._fixed_port:
                self.port = free_port()
            try:
                self._pg_ctl_start(timeout)
                break
            except ServiceError:
                if self._fixed_port or not _address_in_use(self.log_path):
                    raise
        else:
            raise ServiceError(f"postgres: no free port after 3 tries\n{log_tail(self.log_path)}")
        self.create_database(self.dbname)
        return self

    def _pg_ctl_start(self, timeout: float) -> None:
        opts = (
            f"-p {self.port} -k {self.sock_dir} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        argv = [self.bins["pg_ctl"], "-D", str(self.data_dir), "-l", str(self.log_path)]
        argv += ["-o", opts, "-w", "-t", str(int(timeout)), "start"]
        self._run(self._as_pg(argv), timeout=timeout + 10)

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
        name = "migrated_template"
        if not self._migrated:
            self.create_database(name)
            work_dir = _make_tmp("migrate")
            try:
                migrate_database(self.url_for(name), work_dir)
            finally:
                _remove_dir(work_dir)
            self._migrated = True
        return name

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """pg_ctl stop -m fast; SIGKILL the postmaster if that fails; remove the temp dir."""
        if self.dir is None:
            return
        pid = self.postmaster_pid()
        if pid is not None:
            argv = [self.bins["pg_ctl"], "-D", str(self.data_dir), "-m", "fast", "-w"]
            try:
                self._run(self._as_pg([*argv, "-t", str(int(timeout)), "stop"]), timeout + 5)
            except ServiceError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        _unregister(self)
        _remove_dir(self.dir)
        self.dir = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- daphne


class DaphneServer:
    """One `python -m chatsite.serve -b 127.0.0.1 -p PORT chatsite.asgi:application` (daphne's
    command line, see chatsite/serve.py) with a given env."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_dir: Path,
        port: int | None = None,
        app: str = "chatsite.asgi:application",
        cwd: Path = REPO_ROOT,
        name: str = "daphne",
        module: str | None = None,
    ) -> None:
        self.env = dict(env)
        # The chat runs under chatsite.serve (daphne's command line, bodies read from disk)
        # as deploy/systemd does; other test apps under plain daphne.
        self.module = module or ("chatsite.serve" if app.startswith("chatsite.") else "daphne")
        self.log_path = Path(log_dir) / f"{name}.log"
        self._fixed_port = port is not None
        self.port = port or 0
        self.app = app
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> DaphneServer:
        """Start daphne and wait until its port accepts; retries on a port clash."""
        for _attempt in range(3):
            if not self._fixed_port:
                self.port = free_port()
            try:
                self._launch_and_wait(timeout)
                return self
            except ServiceError:
                if self.proc is not None:
                    terminate(self.proc)
                if self._fixed_port or not _address_in_use(self.log_path):
                    raise
        raise ServiceError(f"daphne: no free port after 3 tries\n{log_tail(self.log_path)}")

    def _launch_and_wait(self, timeout: float) -> None:
        argv = [sys.executable, "-m", self.module, "-b", "127.0.0.1", "-p", str(self.port)]
        argv.append(self.app)
        self.proc = _spawn(argv, self.log_path, cwd=self.cwd, env=self.env)
        _register(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(
                    f"daphne exited with {self.proc.returncode}\n{log_tail(self.log_path)}"
                )
            if port_open(self.port) and holds_listener(self.proc.pid, self.port):
                return
            time.sleep(0.05)
        raise ServiceError(f"daphne not listening in {timeout}s\n{log_tail(self.log_path)}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, then SIGKILL after `timeout`."""
        if self.proc is not None:
            terminate(self.proc, timeout)
        _unregister(self)

    def kill(self) -> None:
        """SIGKILL (simulates a crash); the port is kept for restart()."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)

    def restart(self, timeout: float = START_TIMEOUT) -> DaphneServer:
        """Stop if running, then start again on the same port."""
        self.stop()
        self._launch_and_wait(timeout)
        return self


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
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
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
        self.dir = _make_tmp("stack")
        _register(self)
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
        for i in range(self.workers):
            server = DaphneServer(self.env, self.dir, cwd=self.cwd, name=f"daphne-{i}")
            self.servers.append(server)
            server.start(timeout)
        return self

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
        _unregister(self)
        _remove_dir(self.dir)
        self.dir = None

    def __enter__(self) -> DjangoStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
