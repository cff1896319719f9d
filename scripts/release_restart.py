"""Rolling restart of the chat's daphne workers: one at a time, each back on `/healthz`
(200, straight on its port) before the next one goes down.

    python scripts/release_restart.py --ports 8001 8002 --host-header chat.example.org \\
        --restart 'systemctl restart chat-daphne@{port}'

`scripts/release` runs this after `migrate`. Every worker must answer 200 before the first
restart (a release never takes down the last healthy worker); a worker that does not come
back within `--timeout` stops the release with exit status 1 and the others untouched.
Prints one JSON line per worker (port, seconds until healthy again).

`rolling_restart()` is the same loop with the restart as a callable: the production test
drives it against its own worker processes, with clients connected.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable

POLL_SECONDS = 0.2


class ReleaseError(RuntimeError):
    """A worker was not healthy when it had to be; the rolling restart stopped there."""


def healthy(port: int, host_header: str, timeout: float = 2.0) -> bool:
    """True if `GET http://127.0.0.1:PORT/healthz` answers 200 (database and Redis ok)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz", headers={"Host": host_header}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def wait_healthy(port: int, host_header: str, timeout: float) -> float:
    """Poll /healthz until 200; the seconds it took. ReleaseError after `timeout`."""
    started = time.monotonic()
    while not healthy(port, host_header):
        if time.monotonic() - started > timeout:
            raise ReleaseError(f"worker {port} not healthy {timeout:.0f}s after its restart")
        time.sleep(POLL_SECONDS)
    return time.monotonic() - started


def rolling_restart(
    ports: Iterable[int],
    restart: Callable[[int], None],
    *,
    host_header: str = "127.0.0.1",
    timeout: float = 60.0,
    report: Callable[[dict], None] = lambda record: None,
) -> list[dict]:
    """Restart each worker with `restart(port)` and wait for its /healthz 200 before the
    next. Refuses to start (ReleaseError) unless every worker is healthy now."""
    ports = list(ports)
    sick = [port for port in ports if not healthy(port, host_header)]
    if sick:
        raise ReleaseError(f"not healthy before the restart: {sick}; fix them first")
    records = []
    for port in ports:
        started = time.monotonic()
        restart(port)
        restarted = time.monotonic() - started
        waited = wait_healthy(port, host_header, timeout)
        record = {
            "event": "worker_restarted",
            "port": port,
            "restart_seconds": round(restarted, 3),
            "healthy_after_seconds": round(restarted + waited, 3),
        }
        report(record)
        records.append(record)
    return records


def shell_restart(template: str) -> Callable[[int], None]:
    """A restart callable running `template` with `{port}` filled in (no shell)."""

    def restart(port: int) -> None:
        argv = [part.replace("{port}", str(port)) for part in shlex.split(template)]
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)

    return restart


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ports", type=int, nargs="+", required=True)
    parser.add_argument("--host-header", default="127.0.0.1", help="a DJANGO_ALLOWED_HOSTS name")
    parser.add_argument("--restart", default="systemctl restart chat-daphne@{port}")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per worker")
    args = parser.parse_args(argv)
    try:
        rolling_restart(
            args.ports,
            shell_restart(args.restart),
            host_header=args.host_header,
            timeout=args.timeout,
            report=lambda record: print(json.dumps(record), flush=True),
        )
    except (ReleaseError, subprocess.CalledProcessError) as error:
        print(json.dumps({"event": "release_stopped", "error": str(error)}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
