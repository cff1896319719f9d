"""What a client hands its user: opened messages, verified roster changes, trust and
tampering notices, and the connection's state.

``ChatClient.events()`` yields these; ``ChatClient.messages()`` only ``IncomingMessage``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OK = "ok"
UNVERIFIED = "unverified"
REPLAYED = "replayed"
OUT_OF_ORDER = "out_of_order"
DELETED = "deleted"
REPLAY = REPLAYED  # the v1 client's name

EARLIER_IDENTITY = "earlier_identity"
NOT_UPGRADED = "not_upgraded"

__all__ = [
    "DELETED",
    "EARLIER_IDENTITY",
    "NOT_UPGRADED",
    "OK",
    "OUT_OF_ORDER",
    "REPLAY",
    "REPLAYED",
    "UNVERIFIED",
    "Conversation",
    "ConversationChanged",
    "ConversationTampered",
    "DevicesChanged",
    "IncomingMessage",
    "LinkRequested",
    "MessageReflagged",
    "Presence",
    "ReadMark",
    "RosterChange",
    "Rollback",
    "ServerNotice",
    "Status",
    "TrustNotice",
    "Typing",
]


@dataclass(frozen=True)
class IncomingMessage:
    """A stored message after opening and judging (PROTOCOL §2, §9).

    ``status``:

    - ``"ok"``: unwrapped, committed, signed by a device of the sender that her accepted
      identity certified and that was active at ``created``, decrypted, and in order;
    - ``"unverified"``: a step failed (``error`` says which); no content;
    - ``"replayed"``: a copy of a message already shown (``replay_of`` is its id when
      known), or a v1 envelope above a v2 one; no content;
    - ``"out_of_order"``: its sender's counter ``n`` contradicts the order of ``seq``; no
      content;
    - ``"deleted"``: taken back by its sender (§10.1).

    ``note`` qualifies an ``"ok"`` message: ``"earlier_identity"`` (signed by a device of
    an identity the sender had before, which this device never accepted) or
    ``"not_upgraded"`` (a sender without an identity key: checked as in v1). ``v`` is the
    envelope's version (1: stored before the upgrade). ``blobs`` are the blob ids the
    stored message names (§4). Only ``"ok"`` messages have content; show the others as
    such, never as text.
    """

    id: int
    conversation: int
    seq: int
    sender_id: int
    sender: str
    sender_device: int
    client_msg_id: str
    created: str
    status: str
    own: bool
    content: dict | None = None
    error: str | None = None
    replay_of: int | None = None
    note: str | None = None
    v: int | None = None
    blobs: tuple[str, ...] = ()

    @property
    def verified(self) -> bool:
        return self.status == OK

    @property
    def file(self) -> dict | None:
        """The ``file`` object (§10.2) of an ``"ok"`` file message, else None; its fields
        are the sender's say-so until a download checked the bytes (see ``download``)."""
        if self.status == OK and self.content and self.content.get("type") == "file":
            value = self.content.get("file")
            return value if isinstance(value, dict) else None
        return None

    @property
    def text(self) -> str | None:
        """The text of an ``"ok"`` ``{"type":"text"}`` message, else None."""
        if self.status == OK and self.content and self.content.get("type") == "text":
            text = self.content.get("text")
            return text if isinstance(text, str) else None
        return None

    def as_dict(self) -> dict:
        """JSON-able form (adds ``text``)."""
        return {**asdict(self), "text": self.text}


@dataclass(frozen=True)
class TrustNotice:
    """Something about a person's identity or devices that the user must see (§7.4).

    ``kind``: ``"identity_changed"`` (sending to her pauses until ``accept_identity``),
    ``"own_identity_changed"`` (the server lists another identity for this account),
    ``"identity_upgraded"`` (her first identity, signed by a v1 device this client knew),
    ``"uncertified_device"`` (a device of hers without a valid cert: sending to
    conversations with her pauses), ``"own_uncertified_device"`` (the same on this
    account: revoke it unless you just linked it) or ``"bad_identity"`` (an identity
    record that does not check out).
    """

    kind: str
    username: str
    user_id: int
    detail: str = ""


@dataclass(frozen=True)
class RosterChange:
    """One verified roster record of a group (§8), as a timeline event.

    ``op`` is ``create``/``add``/``remove``/``leave``/``title``; ``by`` and ``subjects``
    are user ids (``by_name``/``subject_names`` their names); ``text`` reads e.g. "alice
    added bob", "carol left", "alice removed you", "title changed to …".
    """

    conversation: int
    n: int
    op: str
    by: int
    by_name: str
    subjects: tuple[int, ...]
    subject_names: tuple[str, ...]
    title: str | None
    text: str


@dataclass(frozen=True)
class ConversationTampered:
    """The server showed a conversation whose members cannot be trusted (§8): a roster
    that does not verify or does not match, a changed group id, a message naming a head
    outside the chain, or a direct conversation not between exactly its two people. The
    client sends nothing to it from then on."""

    conversation: int
    reason: str


@dataclass(frozen=True)
class Rollback:
    """The server lost or forked a conversation's history at ``seq`` (§9): the client
    forgets what it judged from there and reloads it."""

    conversation: int
    seq: int
    detail: str = ""


@dataclass(frozen=True)
class MessageReflagged:
    """A message shown earlier is now judged otherwise (§2, §9: a v1 message above a v2
    one is replayed, whichever loaded first): show it as ``status`` from now on."""

    conversation: int
    message_id: int
    status: str


@dataclass(frozen=True)
class LinkRequested:
    """A new device of this account asks to join (§7.2); ``code`` is the link code
    computed from its keys and this device's identity, to compare with its screen."""

    request_id: int
    name: str
    code: str
    expires: str


@dataclass(frozen=True)
class Status:
    """Connection state: ``"connected"`` (synced), or ``"disconnected"`` with the reason
    and the seconds until the next attempt."""

    state: str
    detail: str = ""
    retry_in: float | None = None


@dataclass(frozen=True)
class ConversationChanged:
    """The ``conversation`` frame: added to a conversation, or its roster changed."""

    conversation: dict


@dataclass(frozen=True)
class ServerNotice:
    """An ``error`` frame the server sent on the listening socket."""

    code: str
    detail: str
    frame: dict


@dataclass(frozen=True)
class Conversation:
    """A conversation object of PROTOCOL §4, typed. ``members`` (usernames) and
    ``member_ids`` are as the server lists them (the client sends only to the verified roster's, §8); ``request``
    is true while it is a message request for me (someone not yet in touch wrote first:
    accept or block it, see ``chatclient.contacts``); ``raw`` is the server's object."""

    id: int
    kind: str
    title: str | None
    members: tuple[str, ...]
    member_ids: tuple[int, ...]
    owner: str | None
    last_seq: int
    unread: int
    request: bool
    created: str | None = None
    gid: str | None = None
    roster_head: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Conversation:
        members = [m for m in obj.get("members") or () if isinstance(m, dict)]
        owner = obj.get("owner")
        return cls(
            id=int(obj["id"]),
            kind=str(obj.get("kind", "")),
            title=obj.get("title"),
            members=tuple(str(m.get("username")) for m in members),
            member_ids=tuple(int(m["id"]) for m in members if isinstance(m.get("id"), int)),
            owner=str(owner.get("username")) if isinstance(owner, dict) else None,
            last_seq=int(obj.get("last_seq") or 0),
            unread=int(obj.get("unread") or 0),
            request=obj.get("request") is True,
            created=obj.get("created"),
            gid=obj.get("gid"),
            roster_head=obj.get("roster_head"),
            raw=obj,
        )


@dataclass(frozen=True)
class Typing:
    """``user`` is typing in ``conversation`` (the ``typing`` frame of §5)."""

    conversation: int
    user: str


@dataclass(frozen=True)
class ReadMark:
    """``user`` read ``conversation`` up to seq ``up_to`` (the ``read`` frame of §5; mine
    too, from my other devices)."""

    conversation: int
    user: str
    up_to: int


@dataclass(frozen=True)
class Presence:
    """``user`` came online or went offline (the ``presence`` frame of §5)."""

    user: str
    online: bool


@dataclass(frozen=True)
class DevicesChanged:
    """``user``'s devices or identity changed (``devices_changed``, §7.4): the client
    fetched and checked them again; an identity change comes as a ``TrustNotice`` too."""

    user: str
