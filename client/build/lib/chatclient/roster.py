"""Group rosters (PROTOCOL.md §8): signed, hash-chained records of who is in a group.

Pure functions and one state class; no I/O. The server and every client apply the same
rules through ``RosterState.apply``; who may sign for whom (which device keys of ``by``
count) is the caller's to say, through the ``signing_key`` callback of ``verify_chain``.
The browser twin is ``static/chat/roster.js``, name for name in camelCase.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from Crypto.PublicKey.RSA import RsaKey

from . import protocol

GENESIS = "0" * 64
OPS = ("create", "add", "remove", "leave", "title")
SIGNED_FIELDS = frozenset({"n", "prev", "op", "subjects", "by", "title", "sig_kid", "sig", "hash"})
RECORD_FIELDS = SIGNED_FIELDS | {"created"}
MAX_SUBJECTS = 1000
MAX_TITLE_CHARS = 200


class RosterError(protocol.ProtocolError):
    """A record that is malformed (``bad_request``), not allowed by the rules
    (``forbidden`` when ``by`` may not act, else ``bad_request``), not signed by an
    acceptable key (``bad_signature``), or not the next link of the chain
    (``stale_roster``)."""


def _is_user_id(value: object) -> bool:
    return type(value) is int and 1 <= value <= protocol.MAX_COUNTER


def _is_well_formed(text: str) -> bool:
    """Whether ``text`` has a UTF-8 form (no lone surrogates, which JSON can carry)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def title_hash(title: str | None) -> str:
    """Hex SHA-256 of the title's UTF-8 (of the empty string for None)."""
    return hashlib.sha256((title or "").encode()).hexdigest()


def roster_string(
    gid: str, n: int, prev: str, op: str, subjects: list[int], by: int, title: str | None
) -> str:
    """R_n of §8: ``e2ee-chat/v2/roster|<gid>|<n>|<prev>|<op>|<subjects>|<by>|<title_hash>``."""
    joined = ",".join(str(subject) for subject in subjects)
    return f"e2ee-chat/v2/roster|{gid}|{n}|{prev}|{op}|{joined}|{by}|{title_hash(title)}"


def record_hash(gid: str, record: dict) -> str:
    """h_n of §8: hex SHA-256 of ``R_n + "|" + sig`` (the record's own base64 ``sig``)."""
    text = roster_string(
        gid,
        record["n"],
        record["prev"],
        record["op"],
        record["subjects"],
        record["by"],
        record["title"],
    )
    return hashlib.sha256(f"{text}|{record['sig']}".encode()).hexdigest()


def validate_record(record: object, *, served: bool = False) -> None:
    """Check a record's shape: exactly the fields a maker sends (and ``created`` too when
    ``served`` by the server), types, ascending subjects, canonical base64; else
    ``RosterError('bad_request')``. Signature, hash and rules are not checked here."""
    fields = RECORD_FIELDS if served else SIGNED_FIELDS
    if not isinstance(record, dict) or not (SIGNED_FIELDS <= set(record) <= fields):
        raise RosterError("bad_request", f"a roster record has exactly {sorted(fields)}")
    if type(record["n"]) is not int or not 0 <= record["n"] <= protocol.MAX_COUNTER:
        raise RosterError("bad_request", "n must be an integer from 0")
    if not protocol.is_kid(record["prev"]) or not protocol.is_kid(record["hash"]):
        raise RosterError("bad_request", "prev and hash must be 64 lowercase hex digits")
    if record["op"] not in OPS:
        raise RosterError("bad_request", f"op must be one of {', '.join(OPS)}")
    subjects = record["subjects"]
    if (
        not isinstance(subjects, list)
        or len(subjects) > MAX_SUBJECTS
        or not all(_is_user_id(s) for s in subjects)
        or any(a >= b for a, b in zip(subjects, subjects[1:], strict=False))
    ):
        raise RosterError("bad_request", "subjects must be strictly ascending user ids")
    if not _is_user_id(record["by"]):
        raise RosterError("bad_request", "by must be a user id")
    title = record["title"]
    if title is not None and (
        not isinstance(title, str)
        or not title
        or len(title) > MAX_TITLE_CHARS
        or not _is_well_formed(title)
    ):
        raise RosterError("bad_request", f"title must be null or 1..{MAX_TITLE_CHARS} characters")
    if not protocol.is_kid(record["sig_kid"]):
        raise RosterError("bad_request", "sig_kid must be a kid")
    try:
        if not protocol.b64decode(record["sig"]):
            raise RosterError("bad_request", "sig is empty")
    except protocol.ProtocolError as exc:
        raise RosterError("bad_request", f"sig: {exc.detail}") from exc
    if served and "created" in record and not isinstance(record["created"], str):
        raise RosterError("bad_request", "created must be a time")


def make_record(
    device_keys: protocol.DeviceKeys,
    *,
    gid: str,
    n: int,
    prev: str,
    op: str,
    subjects: Iterable[int],
    by: int,
    title: str | None = None,
) -> dict:
    """A record signed by ``device_keys`` (a device of ``by``), with its ``hash``.

    ``subjects`` are sorted here; the result is what ``POST …/roster/`` takes.
    """
    if not protocol.is_uuid4(gid):
        raise RosterError("bad_request", "gid must be a lowercase UUID4")
    subjects = sorted(set(subjects))
    text = roster_string(gid, n, prev, op, subjects, by, title)
    sig = protocol.b64encode(protocol.pss_sign(device_keys.sig_private, text.encode()))
    record = {
        "n": n,
        "prev": prev,
        "op": op,
        "subjects": subjects,
        "by": by,
        "title": title,
        "sig_kid": device_keys.sig_kid,
        "sig": sig,
    }
    record["hash"] = record_hash(gid, record)
    validate_record(record)
    return record


def verify_record_signature(gid: str, record: dict, sig_public: RsaKey) -> bool:
    """Whether ``sig`` is ``sig_public``'s signature of R_n and ``sig_kid`` is its kid."""
    if record["sig_kid"] != protocol.kid_of(sig_public):
        return False
    text = roster_string(
        gid,
        record["n"],
        record["prev"],
        record["op"],
        record["subjects"],
        record["by"],
        record["title"],
    )
    return protocol.pss_verify(sig_public, text.encode(), protocol.b64decode(record["sig"]))


@dataclass
class RosterState:
    """What a verified chain says: members, owner, title, and its history of heads.

    ``heads`` maps each record hash to its n; ``spans`` keeps, per user, the
    ``[joined at n, left at n or None]`` intervals, so ``member_at`` answers whether a
    user was a member at any verified head, and the owner rule finds each member's latest
    joining record. ``n`` is -1 and ``head`` GENESIS before record 0.
    """

    gid: str
    n: int = -1
    head: str = GENESIS
    owner: int | None = None
    title: str | None = None
    closed: bool = False
    heads: dict[str, int] = field(default_factory=dict)
    spans: dict[int, list[list]] = field(default_factory=dict)

    @property
    def members(self) -> set[int]:
        """The current members' user ids."""
        return {user for user, spans in self.spans.items() if spans and spans[-1][1] is None}

    def joined_at(self, user_id: int) -> int | None:
        """The n of a current member's latest joining record (None for a non-member)."""
        spans = self.spans.get(user_id)
        return spans[-1][0] if spans and spans[-1][1] is None else None

    def member_at(self, user_id: int, head: str) -> bool:
        """Whether ``user_id`` was a member at the verified record whose hash is ``head``."""
        at = self.heads.get(head)
        if at is None:
            return False
        return any(
            start <= at and (end is None or at < end) for start, end in self.spans.get(user_id, [])
        )

    def is_member(self, user_id: int) -> bool:
        """Whether ``user_id`` is a current member (constant time)."""
        spans = self.spans.get(user_id)
        return bool(spans) and spans[-1][1] is None

    def check(self, record: dict) -> None:
        """Whether ``record`` may follow this state: chain position, then §8's rules.

        Raises ``RosterError``: ``stale_roster`` (n or prev is not the next link),
        ``forbidden`` (``by`` may not do this) or ``bad_request`` (the subjects or title
        break the rules, or no member is left).
        """
        self.check_position(record)
        self.check_rules(record)

    def check_position(self, record: dict) -> None:
        """``stale_roster`` unless ``record`` is the next link: n = this n + 1, prev = head."""
        if record["n"] != self.n + 1 or record["prev"] != self.head:
            raise RosterError(
                "stale_roster", f"record {record['n']} does not follow record {self.n}"
            )

    def check_rules(self, record: dict) -> None:
        """§8's rules for ``record`` after this state (its position is not checked here):
        ``forbidden`` when ``by`` may not act, ``bad_request`` otherwise."""
        n, op, by, subjects, title = (
            record["n"],
            record["op"],
            record["by"],
            record["subjects"],
            record["title"],
        )
        if self.closed:
            raise RosterError("bad_request", "the group has no member left")
        if (op == "create") != (n == 0):
            raise RosterError("bad_request", "record 0, and only it, is a create")
        if op == "create":
            if by not in subjects:
                raise RosterError("bad_request", "the creator must be among the first members")
            return
        if title is not None and op != "title":
            raise RosterError("bad_request", f"a {op} record has no title")
        if op in ("add", "remove") and by != self.owner:
            raise RosterError("forbidden", f"only the owner may {op} members")
        if op in ("leave", "title") and not self.is_member(by):
            raise RosterError("forbidden", f"only a member may {op}")
        if op == "add" and (not subjects or any(self.is_member(user) for user in subjects)):
            raise RosterError("bad_request", "add names one or more users who are not members")
        if op == "remove" and (
            not subjects or by in subjects or not all(self.is_member(user) for user in subjects)
        ):
            raise RosterError("bad_request", "remove names members other than the owner")
        if op == "leave" and subjects != [by]:
            raise RosterError("bad_request", "leave names exactly its maker")
        if op == "title" and (subjects or title is None):
            raise RosterError("bad_request", "a title record names no subject and a title")

    def apply(self, record: dict) -> None:
        """``check`` the record, then change the state by it (this object is updated)."""
        self.check(record)
        n, op, by, subjects = record["n"], record["op"], record["by"], record["subjects"]
        if op in ("create", "add"):
            for user in subjects:
                self.spans.setdefault(user, []).append([n, None])
        if op in ("remove", "leave"):
            for user in subjects:
                self.spans[user][-1][1] = n
        if op == "create":
            self.owner, self.title = by, record["title"]
        elif op == "title":
            self.title = record["title"]
        elif op == "leave" and by == self.owner:
            heir = min(((self.joined_at(user), user) for user in self.members), default=None)
            self.owner = None if heir is None else heir[1]
            self.closed = heir is None
        self.n, self.head = n, record["hash"]
        self.heads[record["hash"]] = n

    def copy(self) -> RosterState:
        return RosterState.from_json(self.to_json())

    def to_json(self) -> dict:
        """A JSON-able form for persisting a verified state (``from_json`` reads it)."""
        return {
            "gid": self.gid,
            "n": self.n,
            "head": self.head,
            "owner": self.owner,
            "title": self.title,
            "closed": self.closed,
            "heads": dict(self.heads),
            "spans": {str(user): [list(s) for s in spans] for user, spans in self.spans.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> RosterState:
        return cls(
            gid=data["gid"],
            n=data["n"],
            head=data["head"],
            owner=data["owner"],
            title=data["title"],
            closed=data["closed"],
            heads=dict(data["heads"]),
            spans={int(user): [list(s) for s in spans] for user, spans in data["spans"].items()},
        )


def verify_record(
    state: RosterState,
    record: dict,
    signing_key: Callable[[dict], RsaKey | None],
    *,
    served: bool = False,
) -> None:
    """Check one record against ``state`` and apply it, in the server's order: shape
    (``bad_request``), chain position (``stale_roster``), hash (``bad_request``), the
    signature by the key ``signing_key(record)`` gives (``bad_signature``; None means no
    acceptable device of ``by`` holds ``sig_kid``), then the rules (``forbidden`` /
    ``bad_request``). Raises ``RosterError`` and leaves ``state`` unchanged."""
    validate_record(record, served=served)
    state.check_position(record)
    if record_hash(state.gid, record) != record["hash"]:
        raise RosterError("bad_request", f"record {record['n']}: hash is wrong")
    key = signing_key(record)
    if key is None or not verify_record_signature(state.gid, record, key):
        raise RosterError("bad_signature", f"record {record['n']}: signature does not verify")
    state.apply(record)


def verify_chain(
    gid: str,
    records: Iterable[dict],
    signing_key: Callable[[dict], RsaKey | None],
    *,
    state: RosterState | None = None,
    served: bool = True,
) -> RosterState:
    """Verify ``records`` in order, from record 0 or continuing ``state`` (a copy is
    taken), and return the resulting state. The first bad record raises ``RosterError``."""
    if not protocol.is_uuid4(gid):
        raise RosterError("bad_request", "gid must be a lowercase UUID4")
    current = RosterState(gid=gid) if state is None else state.copy()
    if current.gid != gid:
        raise RosterError("bad_request", "the state is of another group")
    for record in records:
        verify_record(current, record, signing_key, served=served)
    return current
