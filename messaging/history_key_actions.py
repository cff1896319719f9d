"""Writes of history keys (PROTOCOL §7.3): content keys of stored messages wrapped by one
of a user's devices for another of hers, usually one she just linked."""

from django.db import transaction

from accounts.errors import ActionError
from chatclient import protocol
from keys.models import Device

from .models import HistoryKey, Membership, Message

MAX_WRAPS = 500


def store_history_keys(user, device_id: int, wraps: list[tuple[int, str]]) -> int:
    """Store `(message id, base64 ek)` wraps for the user's active device `device_id`;
    returns how many rows are new. A (message, device) pair already stored keeps its
    first wrap.

    All or nothing: `not_found` (not an active device of hers, or an unknown message),
    `bad_request` (more than MAX_WRAPS, a message twice, an `ek` that is not one RSA-OAEP
    block of the device's encryption key) and `not_member` (a message of a conversation
    she is not a current member of) refuse the whole request and store nothing.
    """
    if not 1 <= len(wraps) <= MAX_WRAPS:
        raise ActionError("bad_request", f"Send 1 to {MAX_WRAPS} wraps a request.")
    device = Device.objects.active().filter(pk=device_id, user=user).first()
    if device is None:
        raise ActionError("not_found", "No such active device of yours.")
    message_ids = [message_id for message_id, _ in wraps]
    if len(set(message_ids)) != len(message_ids):
        raise ActionError("bad_request", "A message appears twice in wraps.")
    block = protocol.import_public_key(bytes(device.enc_spki)).size_in_bytes()
    for index, (_, ek) in enumerate(wraps):
        if len(protocol.b64decode(ek)) != block:
            raise ActionError(
                "bad_request", f"wraps.{index}.ek is not wrapped for this device's key."
            )
    conversation_of = dict(
        Message.objects.filter(pk__in=message_ids).values_list("pk", "conversation_id")
    )
    unknown = [message_id for message_id in message_ids if message_id not in conversation_of]
    if unknown:
        raise ActionError("not_found", f"No such message: {unknown[0]}.", messages=unknown[:50])
    readable = set(
        Membership.objects.current()
        .filter(user=user, conversation_id__in=set(conversation_of.values()))
        .values_list("conversation_id", flat=True)
    )
    foreign = [m for m in message_ids if conversation_of[m] not in readable]
    if foreign:
        raise ActionError(
            "not_member",
            f"Message {foreign[0]} is in a conversation you are not a member of.",
            messages=foreign[:50],
        )
    with transaction.atomic():
        stored = set(
            HistoryKey.objects.filter(device=device, message_id__in=message_ids).values_list(
                "message_id", flat=True
            )
        )
        new = [
            HistoryKey(message_id=message_id, device=device, ek=ek)
            for message_id, ek in wraps
            if message_id not in stored
        ]
        HistoryKey.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)
