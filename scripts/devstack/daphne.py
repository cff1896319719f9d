"""daphne workers: the chat as `python -m chatsite.serve` (daphne's command line), or as
the systemd unit deploy/systemd/chat-daphne@.service starts it, or any other ASGI app."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

from .base import REPO_ROOT, Service

UNIT_FILE = REPO_ROOT / "deploy" / "systemd" / "chat-daphne@.service"


class DaphneServer(Service):
    """One `python -m chatsite.serve -b 127.0.0.1 -p PORT chatsite.asgi:application` (daphne's
    command line, see chatsite/serve.py) with a given env; other apps under plain daphne."""

    name = "daphne"
    kind = "daphne"  # a stack's workers are named KIND-0, KIND-1 ... (their log files)

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
        # The chat runs under chatsite.serve (daphne's command line, bodies read from disk)
        # as deploy/systemd does; other test apps under plain daphne.
        self.module = module or ("chatsite.serve" if app.startswith("chatsite.") else "daphne")
        self.app = app
        self.name = name
        super().__init__(Path(log_dir) / f"{name}.log", port=port, env=env, cwd=cwd)

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            self.module,
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            self.app,
        ]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


def unit_daphne_argv(port: int, unit_file: Path = UNIT_FILE) -> list[str]:
    """ExecStart of the systemd unit, for this venv and port."""
    line = next(x for x in unit_file.read_text().splitlines() if x.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    if not (argv[0].endswith("/python") and argv[1:3] == ["-m", "chatsite.serve"]):
        raise ValueError(f"{unit_file.name}: ExecStart is not `…/python -m chatsite.serve`")
    return [sys.executable, *(a.replace("%i", str(port)) for a in argv[1:])]


class UnitDaphne(DaphneServer):
    """A chat worker started with the systemd unit's command line (its flags:
    --proxy-headers, -v 0, the ping interval ...), as production starts it."""

    kind = "unit-daphne"

    def argv(self) -> list[str]:
        return unit_daphne_argv(self.port)
