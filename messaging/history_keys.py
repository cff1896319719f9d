"""The history-keys endpoint (PROTOCOL §4, §7.3): one of my devices gives another of mine
the content keys of messages it can read."""

from typing import Annotated

from ninja import Path, Router, Schema
from pydantic import Field

from accounts.auth import session_auth
from accounts.schemas import StrictIn, with_errors
from keys.queries import acting_device

from .history_key_actions import MAX_WRAPS, store_history_keys
from .schemas import DB_INT_MAX, ObjectId, canonical_b64

router = Router(tags=["history keys"], auth=session_auth)

EK_MAX = 700  # base64 of one RSA-OAEP block of a 4096-bit key is 684 characters


class WrapIn(StrictIn):
    message: ObjectId
    ek: Annotated[str, Field(min_length=4, max_length=EK_MAX), canonical_b64()]


class HistoryKeysIn(StrictIn):
    wraps: list[WrapIn] = Field(min_length=1, max_length=MAX_WRAPS)


class StoredOut(Schema):
    stored: int


@router.post("/devices/{int:device_id}/history-keys/", response=with_errors({200: StoredOut}))
def post_history_keys(
    request, device_id: int = Path(..., ge=1, le=DB_INT_MAX), *, body: HistoryKeysIn
):
    """From one of my devices (`X-Device-Id`): wraps of messages' content keys for my
    device `device_id`, served as its entry in those envelopes' `keys`."""
    acting_device(request.auth, request.headers.get("X-Device-Id"))
    wraps = [(wrap.message, wrap.ek) for wrap in body.wraps]
    return {"stored": store_history_keys(request.auth, device_id, wraps)}
