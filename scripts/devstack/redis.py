"""redis-server on 127.0.0.1 with no persistence, and a minimal RESP client for it."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from .base import STOP_TIMEOUT, Service, ServiceError, make_tmp, remove_dir


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


class RedisServer(Service):
    """redis-server on 127.0.0.1 with no persistence; `.url` is redis://127.0.0.1:P/0.
    Ready when PING answers PONG; `restart()` keeps the port and loses the data."""

    name = "redis-server"

    def __init__(self, port: int | None = None) -> None:
        self.binary = find_redis_server()
        if self.binary is None:
            raise ServiceError("redis-server not found (run scripts/install-system-deps.sh)")
        self.dir: Path | None = None
        super().__init__(Path("/nonexistent/redis.log"), port=port)

    @property
    def url(self) -> str:
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        """URL of logical database `db` on this server."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def argv(self) -> list[str]:
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--daemonize", "no",
        ]  # fmt: skip

    def ready(self) -> bool:
        try:
            return redis_command(self.port, "PING", timeout=1.0) == b"+PONG"
        except OSError:
            return False

    def start(self, timeout: float = 30.0) -> RedisServer:
        """Start in a temp dir of its own; cleans up on failure."""
        if self.dir is None:
            self.dir = make_tmp("redis")
            self.log_path = self.dir / "redis.log"
            self.cwd = self.dir
        try:
            return super().start(timeout)
        except BaseException:
            self.stop()
            raise

    def flushdb(self, db: int) -> None:
        """Empty logical database `db`."""
        replies = redis_pipeline(self.port, ["SELECT", str(db)], ["FLUSHDB"])
        if replies != [b"+OK", b"+OK"]:
            raise ServiceError(f"redis SELECT/FLUSHDB {db} failed: {replies}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server and remove its temp dir."""
        super().stop(timeout)
        remove_dir(self.dir)
        self.dir = None
