"""Client frames of the WebSocket (PROTOCOL §5), declared once and parsed in one call.

Frames may carry unknown fields (ignored); envelopes may not (see `schemas.Envelope`).
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from accounts.errors import ActionError
from chatclient.protocol import is_client_msg_id
from chatclient.protocol_errors import loads_strict

from .schemas import BlobIds, ClientMsgId, Envelope, ObjectId, Seq, validation_error

MAX_SYNC_CONVERSATIONS = 1000


class Frame(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class SendFrame(Frame):
    type: Literal["send"]
    conversation: ObjectId
    client_msg_id: ClientMsgId
    envelope: Envelope
    blobs: BlobIds = ()


class SyncFrame(Frame):
    type: Literal["sync"]
    cursors: Annotated[
        dict[Annotated[str, Field(pattern=r"^[1-9][0-9]{0,18}$")], Seq],
        Field(max_length=MAX_SYNC_CONVERSATIONS),
    ]


class TypingFrame(Frame):
    type: Literal["typing"]
    conversation: ObjectId


class ReadFrame(Frame):
    type: Literal["read"]
    conversation: ObjectId
    up_to: Seq


class PingFrame(Frame):
    type: Literal["ping"]


ClientFrame = Annotated[
    SendFrame | SyncFrame | TypingFrame | ReadFrame | PingFrame, Field(discriminator="type")
]
FRAME_TYPES = frozenset({"send", "sync", "typing", "read", "ping"})
client_frame_adapter = TypeAdapter(ClientFrame)


def parse_frame(text: str) -> Frame:
    """Parse one text frame; raises ActionError (`bad_request`, `unknown_type`).

    The raised error carries `client_msg_id` when the frame had a well-formed one, so a
    sender can match the error to its message.
    """
    try:
        data = loads_strict(text)
    except (ValueError, RecursionError) as exc:
        raise ActionError("bad_request", "The frame is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise ActionError("bad_request", "A frame is a JSON object.")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ActionError("bad_request", "A frame needs a string `type`.")
    if kind not in FRAME_TYPES:
        raise ActionError("unknown_type", f"Unknown frame type {kind[:40]!r}.")
    try:
        return client_frame_adapter.validate_python(data)
    except ValidationError as exc:
        error = validation_error(exc)
        msg_id = data.get("client_msg_id")
        if kind == "send" and isinstance(msg_id, str) and is_client_msg_id(msg_id):
            error.extra["client_msg_id"] = msg_id
        raise error from None
