"""Taking a message back (§10.1): the sender removes it for everyone."""

import logging

from django.db import transaction
from django.db.models import Q

from accounts.errors import ActionError
from accounts.models import User

from .. import realtime
from ..models import HistoryKey, Membership, Message
from .blobs import delete_blobs_of

logger = logging.getLogger(__name__)


def take_back(user: User, conversation_id: int, message_id: int) -> bool:
    """Empty the sender's message: `envelope` null, `deleted` true, its history keys and
    blobs gone (storage files after commit); the row and its seq stay (gapless). Only its
    sender may: anyone else, members included, gets `not_found`. Then a `deleted` frame
    goes to every current member's connections and to former members who could read it.
    Returns whether it changed anything (a second call is a no-op)."""
    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .filter(pk=message_id, conversation_id=conversation_id, sender=user)
            .first()
        )
        if message is None:
            raise ActionError("not_found", "No such message of yours.")
        if message.deleted:
            return False
        Message.objects.filter(pk=message.pk).update(envelope=None, deleted=True, size=0)
        HistoryKey.objects.filter(message_id=message.pk).delete()
        delete_blobs_of(message.pk)
        readers = list(
            Membership.objects.filter(conversation_id=conversation_id)
            .filter(Q(left_seq__isnull=True) | Q(left_seq__gte=message.seq))
            .values_list("user_id", flat=True)
        )
    frame = {
        "type": "deleted",
        "conversation": conversation_id,
        "id": message.pk,
        "seq": message.seq,
    }
    try:
        realtime.send_to_users_sync(readers, frame)
    except Exception:  # taken back: members see it by history and sync
        logger.exception("fan-out of the take-back of message %s failed", message.pk)
    return True
