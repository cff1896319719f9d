"""Declared shapes of the messaging API, the envelope and roster bodies (PROTOCOL §2, §4, §8).

The same models validate HTTP bodies and WebSocket frames (see `frames`).
"""

import re
from typing import Annotated, Literal

from ninja import Schema
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from accounts.errors import ActionError
from accounts.schemas import StrictIn, UserRef
from chatclient import protocol

DB_INT_MAX = 2**63 - 1
KID_PATTERN = re.compile(r"[0-9a-f]{64}")
MAX_KEYS_PER_ENVELOPE = 10_000

ObjectId = Annotated[int, Field(ge=1, le=DB_INT_MAX, strict=True)]
Seq = Annotated[int, Field(ge=0, le=DB_INT_MAX, strict=True)]


def check_b64(value: str, length: int | None = None) -> str:
    """Canonical padded base64 (of `length` bytes when given), else ValueError."""
    try:
        protocol.b64decode(value, length=length)
    except protocol.ProtocolError as exc:
        raise ValueError(exc.detail) from exc
    return value


def canonical_b64(length: int | None = None) -> AfterValidator:
    return AfterValidator(lambda value: check_b64(value, length))


def check_client_msg_id(value: str) -> str:
    if not protocol.is_client_msg_id(value):
        raise ValueError("client_msg_id must be a lowercase canonical UUID")
    return value


def check_kid(value: str) -> str:
    if not KID_PATTERN.fullmatch(value):
        raise ValueError("a kid is 64 lowercase hex digits")
    return value


def check_blob_ids(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("blob ids must be distinct")
    return value


def check_head(value: str) -> str:
    if not protocol.is_head(value):
        raise ValueError('head is "" or a roster record hash (64 lowercase hex digits)')
    return value


ClientMsgId = Annotated[str, AfterValidator(check_client_msg_id)]
Kid = Annotated[str, AfterValidator(check_kid)]
Counter = Annotated[int, Field(ge=1, le=protocol.MAX_COUNTER, strict=True)]
Head = Annotated[str, AfterValidator(check_head)]
MAX_BLOBS_PER_MESSAGE = 10
BlobId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{22}$")]
BlobIds = Annotated[
    list[BlobId], Field(max_length=MAX_BLOBS_PER_MESSAGE), AfterValidator(check_blob_ids)
]


def check_wrapped_keys(value: dict[str, str]) -> dict[str, str]:
    if not value:
        raise ValueError("keys must not be empty")
    if len(value) > MAX_KEYS_PER_ENVELOPE:
        raise ValueError("too many keys")
    for kid, wrapped in value.items():
        check_kid(kid)
        check_b64(wrapped)
    return value


class Envelope(BaseModel):
    """Exactly the fields of a v2 envelope (PROTOCOL §2); anything else, v1 included, is
    refused. `n` is a JSON integer 1..2^53-1 (no bool, float or string).

    A plain pydantic model, not a ninja `Schema`: ninja's wrap validator (for reading
    Django objects) doubled the cost of parsing every send frame (~180 -> ~90 µs)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    v: Literal[2]
    n: Counter
    head: Head
    iv: Annotated[str, canonical_b64(12)]
    ct: Annotated[str, canonical_b64()]
    kc: Annotated[str, canonical_b64(32)]
    keys: Annotated[dict[str, str], AfterValidator(check_wrapped_keys)]
    sig_kid: Kid
    sig: Annotated[str, canonical_b64()]


class SendIn(StrictIn):
    client_msg_id: ClientMsgId
    envelope: Envelope
    blobs: BlobIds = []


UserId = Annotated[int, Field(ge=1, le=protocol.MAX_COUNTER, strict=True)]


class RosterRecordIn(Schema):
    """A roster record as its maker posts it (§8): exactly these nine fields. What the
    schema cannot say (ascending subjects, canonical base64, hash, signature, rules) the
    action checks with `chatclient.roster`."""

    model_config = ConfigDict(strict=True, extra="forbid")

    n: Annotated[int, Field(ge=0, le=protocol.MAX_COUNTER, strict=True)]
    prev: Kid
    op: Literal["create", "add", "remove", "leave", "title"]
    subjects: list[UserId] = Field(max_length=1000)
    by: UserId
    title: Annotated[str, Field(min_length=1, max_length=200)] | None
    sig_kid: Kid
    sig: Annotated[str, canonical_b64()]
    hash: Kid


class ConversationIn(Schema):
    """A direct conversation `{"members": ["bob"]}` or a group `{"gid", "title", "roster"}`
    (§8); which one, and whether the fields fit together, the action decides. Unknown
    fields are refused, so an old `kind`/`members` group body is not taken as direct."""

    model_config = ConfigDict(strict=True, extra="forbid")

    members: list[Annotated[str, Field(min_length=1, max_length=150)]] | None = Field(
        None, max_length=1000
    )
    gid: Annotated[str, Field(max_length=36)] | None = None
    title: Annotated[str, Field(max_length=200)] | None = None
    roster: RosterRecordIn | None = None


class RosterIn(Schema):
    """`POST …/roster/`: one record, with `gid` only for a v1 group's record 0 (§8)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    record: RosterRecordIn
    gid: Annotated[str, Field(max_length=36)] | None = None


class RosterHead(Schema):
    n: int
    hash: str


class RosterRecordOut(Schema):
    n: int
    prev: str
    op: str
    subjects: list[int]
    by: int
    title: str | None
    sig_kid: str
    sig: str
    hash: str
    created: str


class RosterRecords(Schema):
    records: list[RosterRecordOut]


class ConversationOut(Schema):
    id: int
    kind: str
    title: str | None
    members: list[UserRef]
    owner: UserRef | None
    last_seq: int
    unread: int
    created: str
    last_activity: str
    read_up_to: int
    read_marks: dict[str, int]
    gid: str | None
    roster_head: RosterHead | None
    request: bool
    blocked: bool


class ConversationList(Schema):
    conversations: list[ConversationOut]


class ConversationWrapped(Schema):
    conversation: ConversationOut


class MessageOut(Schema):
    id: int
    conversation: int
    seq: int
    sender_id: int
    sender: str
    sender_device: int
    client_msg_id: str
    created: str
    envelope: dict | None
    blobs: list[str]
    deleted: bool


class MessageWrapped(Schema):
    message: MessageOut


class BlobOut(Schema):
    id: str
    size: int
    created: str


class BlobWrapped(Schema):
    blob: BlobOut


class MessagePage(Schema):
    messages: list[MessageOut]
    has_more: bool


def validation_error(exc) -> ActionError:
    """A pydantic ValidationError as `bad_request` with per-field messages."""
    fields: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "body"
        fields.setdefault(where, []).append(error["msg"])
    return ActionError("bad_request", "Invalid request.", fields=fields)
