"""What one device remembers across runs: cursors, message counters (§2), order ledgers
(§9), verified rosters (§8), trust decisions (§7.4), user names and history transfers.

``StateStore`` keeps it in memory, or in one JSON file (the CLI profile's ``state.json``)
that several processes of the same device share: every ``save`` takes a file lock,
reads what the others wrote, merges it with this process's changes and writes the
result, so a ``send`` beside a running ``listen`` loses nothing. Counters are allocated
inside that lock, so two processes never use the same ``n``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .config import ProfileError, read_json, write_json

try:  # POSIX; elsewhere the processes of one profile are not serialised.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

FORMAT = 2
SECTIONS = (
    "cursors",  # conversation id -> last seq handled
    "counters",  # conversation id -> last n this device used there (§2)
    "ledgers",  # conversation id -> ordering.Ledger rows (§9)
    "rosters",  # conversation id -> rosters.Membership JSON (§8)
    "trust",  # user id -> trust.Contact JSON (§7.4)
    "names",  # user id -> username last seen
    "transfers",  # new device id -> history transfer progress (§7.3)
    "legacy",  # username -> signing kids seen by a v1 client (§7.5 continuity)
)


def _max_merge(mine: int, theirs: int | None) -> int:
    return mine if theirs is None else max(mine, theirs)


def _ledger_merge(mine: list, theirs: list | None) -> list:
    """Union of judged rows by message id (this process's rows win), in seq order."""
    rows = {row[0]: row for row in theirs or []}
    rows.update({row[0]: row for row in mine})
    return sorted(rows.values(), key=lambda row: (row[1], row[0]))


def _roster_merge(mine: dict, theirs: dict | None) -> dict:
    """The view verified further wins; a tampered mark is never lost."""
    if theirs is None:
        return mine
    if theirs.get("tampered") and not mine.get("tampered"):
        return theirs
    if mine.get("tampered") and not theirs.get("tampered"):
        return mine
    return theirs if _roster_n(theirs) > _roster_n(mine) else mine


def _roster_n(view: dict) -> int:
    state = view.get("state")
    return state["n"] if isinstance(state, dict) else -1


MERGE: dict[str, Callable[[Any, Any], Any]] = {
    "cursors": _max_merge,
    "counters": _max_merge,
    "ledgers": _ledger_merge,
    "rosters": _roster_merge,
}


class StateStore:
    """A device's persistent state, by section and string key.

    Plain values are read with ``get`` and written with ``put``. Objects that change in
    place (ledgers, roster views) are held live through ``live`` and marked with
    ``changed``; ``save`` serialises them with their ``to_json``. A write with
    ``force=True`` replaces what other processes wrote for that key instead of merging
    (a cursor moved back after a rollback, a ledger after ``forget_from``).
    """

    def __init__(self, path: Path | str | None = None, *, device_id: int) -> None:
        self.path = Path(path) if path is not None else None
        self.device_id = device_id
        self.data: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
        self._dirty: dict[str, set[str]] = {section: set() for section in SECTIONS}
        self._forced: dict[str, set[str]] = {section: set() for section in SECTIONS}
        self._live: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
        if self.path is not None:
            self.data = self._read()

    # --- access ----------------------------------------------------------------------------

    def get(self, section: str, key: object, default: Any = None) -> Any:
        return self.data[section].get(str(key), default)

    def keys(self, section: str) -> list[str]:
        return list(self.data[section])

    def put(self, section: str, key: object, value: Any, *, force: bool = False) -> None:
        """Set a plain value (kept until ``save``)."""
        key = str(key)
        self.data[section][key] = value
        self._live[section].pop(key, None)
        self._mark(section, key, force)

    def live(self, section: str, key: object, parse: Callable[[Any], Any], make: Callable) -> Any:
        """The live object of a key: parsed from the stored JSON once, or ``make()``."""
        key = str(key)
        cache = self._live[section]
        if key not in cache:
            stored = self.data[section].get(key)
            cache[key] = make() if stored is None else parse(stored)
        return cache[key]

    def changed(self, section: str, key: object, *, force: bool = False) -> None:
        """Mark a live object as changed, to be written by the next ``save``."""
        self._mark(section, str(key), force)

    def _mark(self, section: str, key: str, force: bool) -> None:
        self._dirty[section].add(key)
        if force:
            self._forced[section].add(key)

    # --- cursors and counters --------------------------------------------------------------

    def cursor(self, conversation_id: int) -> int | None:
        return self.get("cursors", conversation_id)

    def set_cursor(self, conversation_id: int, seq: int, *, force: bool = False) -> None:
        """Record ``seq`` as handled (``force`` also moves it back)."""
        self.put("cursors", conversation_id, seq, force=force)

    def allocate_counter(self, conversation_id: int, *, above: int = 0) -> int:
        """The next ``n`` for this device in a conversation: greater than every ``n`` it used
        there (in any process of this profile) and than ``above``; persisted before it is
        returned (§2)."""
        key = str(conversation_id)
        allocated = 0

        def bump() -> None:
            nonlocal allocated
            allocated = max(self.data["counters"].get(key, 0), above) + 1
            self.data["counters"][key] = allocated
            self._dirty["counters"].add(key)

        self.save(inside=bump)
        return allocated

    # --- persistence -----------------------------------------------------------------------

    def save(self, *, inside: Callable[[], None] | None = None) -> None:
        """Merge with what other processes saved (this process then sees their changes
        too), run ``inside`` (under the file lock) and write. In memory only ``inside``
        runs."""
        for section, cache in self._live.items():
            for key in self._dirty[section] & cache.keys():
                self.data[section][key] = cache[key].to_json()
        if self.path is None:
            if inside is not None:
                inside()
            self._clear()
            return
        with self._locked():
            self._merge(self._read())
            if inside is not None:
                inside()
            state = {"v": FORMAT, "device_id": self.device_id, **self.data}
            write_json(self.path, state, compact=True)
            self._clear()

    def _clear(self) -> None:
        for section in SECTIONS:
            self._dirty[section].clear()
            self._forced[section].clear()

    def _merge(self, theirs_all: dict[str, dict]) -> None:
        for section in SECTIONS:
            mine, theirs = self.data[section], theirs_all[section]
            merge = MERGE.get(section)
            for key in set(mine) | set(theirs):
                if key in self._dirty[section]:
                    if merge is not None and key not in self._forced[section]:
                        merged = merge(mine[key], theirs.get(key))
                        if merged != mine[key]:
                            mine[key] = merged
                            self._live[section].pop(key, None)
                elif key in theirs and theirs[key] != mine.get(key):
                    mine[key] = theirs[key]
                    self._live[section].pop(key, None)

    def _read(self) -> dict[str, dict]:
        """The saved sections of this device (empty ones for a missing file, another
        device's file or a v1 file's unknown parts)."""
        try:
            saved = read_json(self.path)
        except ProfileError:  # an unreadable state file: start afresh, it is rewritten
            saved = None
        empty = {section: {} for section in SECTIONS}
        if not isinstance(saved, dict) or saved.get("device_id") != self.device_id:
            return empty
        if saved.get("v") != FORMAT:  # the v1 client's file: cursors and device sets
            cursors = saved.get("cursors")
            known = saved.get("known_devices")
            empty["cursors"] = dict(cursors) if isinstance(cursors, dict) else {}
            empty["legacy"] = dict(known) if isinstance(known, dict) else {}
            return empty
        for section in SECTIONS:
            value = saved.get(section)
            if isinstance(value, dict):
                empty[section] = value
        return empty

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
