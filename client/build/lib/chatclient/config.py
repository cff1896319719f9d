"""Where the command-line client keeps its files, and how it writes them (0600, atomically).

One profile per directory: ``session.json`` (server URL and session cookies),
``keystore.json`` (the PROTOCOL §3 key file, same JSON as the browser's export) and
``state.json`` (what the device remembers: cursors, counters, ledgers, rosters and trust;
see ``state.StateStore``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import ChatError

APP_DIR_NAME = "e2ee-chat"
CONFIG_DIR_ENV = "CHAT_CONFIG_DIR"


def default_config_dir() -> Path:
    """``$CHAT_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/e2ee-chat``, else ``~/.config/e2ee-chat``."""
    if os.environ.get(CONFIG_DIR_ENV):
        return Path(os.environ[CONFIG_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / APP_DIR_NAME


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only (0600), replacing it atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, value: object, *, compact: bool = False) -> None:
    """``write_private`` of indented (or ``compact``) JSON."""
    if compact:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False)
    write_private(path, (text + "\n").encode())


class ProfileError(ChatError):
    """A profile file that cannot be read or is not the JSON it should be."""


def read_json(path: Path) -> object | None:
    """The JSON in ``path``, or None if the file does not exist; ``ProfileError`` if unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ProfileError(f"cannot read {path}: {exc}") from exc


class Profile:
    """The files of one client profile under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def session_path(self) -> Path:
        return self.directory / "session.json"

    @property
    def keystore_path(self) -> Path:
        return self.directory / "keystore.json"

    @property
    def state_path(self) -> Path:
        return self.directory / "state.json"

    def load_session(self) -> dict | None:
        return read_json(self.session_path)

    def save_session(self, state: dict) -> None:
        write_json(self.session_path, state)

    def load_keystore(self) -> dict | None:
        return read_json(self.keystore_path)

    def save_keystore(self, record: dict) -> None:
        write_json(self.keystore_path, record)
