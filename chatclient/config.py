"""Where the command-line client keeps its files, and how it writes them (0600, atomically).

One profile per directory: ``session.json`` (server URL and session cookies),
``keystore.json`` (the PROTOCOL §3 key file, same JSON as the browser's export) and
``state.json`` (per-conversation cursors and the device sets last seen).
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


def write_json(path: Path, value: object) -> None:
    """``write_private`` of indented JSON."""
    write_private(path, (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode())


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

    def load_state(self, device_id: int) -> dict:
        """Cursors and known device sets saved for ``device_id`` (empty for another device)."""
        try:
            state = read_json(self.state_path)
        except ProfileError:
            state = None  # only cursors and device sets: start afresh
        if (
            not isinstance(state, dict)
            or state.get("device_id") != device_id
            or not isinstance(state.get("cursors"), dict)
            or not isinstance(state.get("known_devices"), dict)
        ):
            return {"device_id": device_id, "cursors": {}, "known_devices": {}}
        return state

    def save_state(self, device_id: int, cursors: dict, known_devices: dict) -> None:
        """Merge into the saved state: each cursor keeps the higher value and each user's
        device set the given one, so a ``send`` beside a running ``listen`` loses nothing."""
        saved = self.load_state(device_id)
        merged = {int(k): v for k, v in saved["cursors"].items()}
        for conversation, seq in cursors.items():
            merged[int(conversation)] = max(seq, merged.get(int(conversation), 0))
        state = {
            "device_id": device_id,
            "cursors": {str(k): v for k, v in sorted(merged.items())},
            "known_devices": {**saved["known_devices"], **known_devices},
        }
        write_json(self.state_path, state)
