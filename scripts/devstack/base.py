"""What every service of the dev stack shares: ports, logs, temp dirs, the register of
running services, and ``Service``, one child process on a TCP port of 127.0.0.1.

A ``Service`` is run by mirakuru's ``TCPExecutor`` (the process runner under
pytest-postgresql and pytest-redis): it spawns the process in a session of its own,
waits until the port answers (and the service's own check, such as Redis's PING,
passes, and the port is held by this very process), and stops it by PID: SIGTERM to its
process group, SIGKILL after the timeout. Every start and stop is bounded in time.
Services still running when the interpreter exits are stopped by an atexit hook.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from mirakuru import TCPExecutor
from mirakuru.base import ENV_UUID
from mirakuru.exceptions import (
    AlreadyRunning,
    ExecutorError,
    ProcessExitedWithError,
    TimeoutExpired,
)

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


def address_in_use(log_path: Path | str) -> bool:
    """Whether the end of a service's log says its port was taken."""
    text = log_tail(log_path, 20).lower()
    return "address already in use" in text or "could not bind" in text


def make_tmp(prefix: str, parent: str | None = None) -> Path:
    """A new temp dir ``e2ee-PREFIX-*`` (under `parent` if given)."""
    return Path(tempfile.mkdtemp(prefix=f"e2ee-{prefix}-", dir=parent))


def remove_dir(path: Path | None) -> None:
    """Remove a service's temp dir, unless TEST_KEEP_SERVICE_DIRS is set (to read logs)."""
    if path is not None and not os.environ.get(KEEP_DIRS_ENV):
        shutil.rmtree(path, ignore_errors=True)


def register(service: object) -> None:
    """Have `stop_all` (at interpreter exit) stop this service if it is still running."""
    _live[id(service)] = service


def unregister(service: object) -> None:
    _live.pop(id(service), None)


@atexit.register
def stop_all() -> None:
    """Stop every registered service that is still running."""
    for service in list(_live.values()):
        with contextlib.suppress(Exception):  # best effort at exit
            service.stop()  # type: ignore[attr-defined]


class _Executor(TCPExecutor):
    """mirakuru's TCP executor whose child gets exactly `env` (mirakuru's own executors
    add the parent's environment, which would bring back a REDIS_URL a stack left out),
    and is ready when the port answers, `ready()` passes and, with `owned`, the port's
    listening socket is this process's."""

    def __init__(self, argv, port, env, ready, owned, **kwargs) -> None:
        super().__init__(argv, host="127.0.0.1", port=port, envvars=dict(env or {}), **kwargs)
        self.only_env = None if env is None else dict(env)
        self.ready = ready
        self.owned = owned

    @property
    def envvars(self) -> dict[str, str]:
        merged = super().envvars
        if self.only_env is None:
            return merged
        return {k: v for k, v in merged.items() if k in self.only_env or k == ENV_UUID}

    def after_start_check(self) -> bool:
        if not super().after_start_check() or not self.ready():
            return False
        return not self.owned or holds_listener(self.process.pid, self.port)


class Service:
    """One child process listening on a TCP port of 127.0.0.1, its output in `log_path`.

    Subclasses give `argv()` (the command line for `self.port`) and may give `ready()`
    (a check beyond an open port), `env` (None: this process's environment) and `cwd`.
    With no port given, a free one is picked, and picked again (3 tries) if the service
    reports the port taken; `restart()` keeps the port.
    """

    name = "service"
    owned = True  # the process itself holds the listening socket (checked on Linux)

    def __init__(
        self,
        log_path: Path,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.log_path = Path(log_path)
        self._fixed_port = port is not None
        self.port = port or 0
        self.env = None if env is None else dict(env)
        self.cwd = cwd
        self._executor: _Executor | None = None

    def argv(self) -> list[str]:
        """The command line that runs the service on `self.port`."""
        raise NotImplementedError

    def ready(self) -> bool:
        """Whether the service answers, once its port accepts connections."""
        return True

    @property
    def pid(self) -> int | None:
        """The PID of the running process, None when it is not running."""
        executor = self._executor
        return executor.process.pid if executor and executor.process else None

    @property
    def running(self) -> bool:
        return self._executor is not None and self._executor.running()

    def start(self, timeout: float = START_TIMEOUT):
        """Start and wait until ready; picks another free port on a clash (3 tries)."""
        for _attempt in range(3):
            if not self._fixed_port:
                self.port = free_port()
            try:
                self._launch(timeout)
                register(self)
                return self
            except ServiceError:
                if self._fixed_port or not address_in_use(self.log_path):
                    raise
        raise ServiceError(f"{self.name}: no free port after 3 tries\n{log_tail(self.log_path)}")

    def _launch(self, timeout: float) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self._executor = _Executor(
                self.argv(),
                self.port,
                self.env,
                self.ready,
                self.owned,
                cwd=str(self.cwd) if self.cwd else None,
                timeout=timeout,
                sleep=0.05,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                self._executor.start()
            except AlreadyRunning as error:
                with open(self.log_path, "a") as note:
                    note.write(f"\nport {self.port}: address already in use (before start)\n")
                raise ServiceError(f"{self.name}: port {self.port} already in use") from error
            except ProcessExitedWithError as error:
                raise ServiceError(
                    f"{self.name} exited with {error.exit_code}\n{log_tail(self.log_path)}"
                ) from error
            except TimeoutExpired as error:  # and killed
                raise ServiceError(
                    f"{self.name} not ready in {timeout}s\n{log_tail(self.log_path)}"
                ) from error

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:  # noqa: ARG002 (the executor's)
        """SIGTERM the process group, SIGKILL it if it outlives the executor's timeout."""
        self._halt()
        unregister(self)

    def _halt(self) -> None:
        if self._executor is not None:
            with contextlib.suppress(ExecutorError):  # it had already exited with an error
                self._executor.stop()

    def kill(self) -> None:
        """SIGKILL (simulates a crash); the port is kept for `restart()`."""
        if self._executor is not None:
            self._executor.kill()

    def restart(self, timeout: float = START_TIMEOUT):
        """Stop if running, then start again on the same port (temp dirs are kept)."""
        self._halt()
        self._launch(timeout)
        register(self)
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Command(Service):
    """Any server given by its command line, in which ``{port}`` stands for the port:
    ``Command([sys.executable, "-m", "moto.server", "-p", "{port}"], log).start()``."""

    def __init__(
        self,
        command: list[str],
        log_path: Path,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(log_path, port=port, env=env, cwd=cwd)
        self.command = list(command)
        self.name = name or Path(command[0]).name

    def argv(self) -> list[str]:
        return [part.replace("{port}", str(self.port)) for part in self.command]
