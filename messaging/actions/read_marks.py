"""Read marks: how far a member has read, told to every member when it moves (§5)."""

from django.db import transaction

from accounts.models import User

from .. import dbthread, queries, realtime, visibility
from ..models import Membership


def mark_read(user: User, conversation_id: int, up_to: int) -> tuple[int, list[int]] | None:
    """Raise the read mark to `up_to` (capped at `last_seq`); returns (mark, whom to tell)
    if it moved: her own devices, and the members she is in touch with there (§6: not
    while it is a pending request, not across a block)."""
    with transaction.atomic():
        membership = queries.require_membership(user, conversation_id, current=True)
        mark = min(up_to, membership.conversation.last_seq)
        moved = Membership.objects.filter(pk=membership.pk, read_up_to__lt=mark).update(
            read_up_to=mark
        )
    if not moved:
        return None
    return mark, visibility.frame_recipients(user.pk, conversation_id)


_mark_read_in_db_thread = dbthread.database_call(mark_read)


async def amark_read(user: User, conversation_id: int, up_to: int) -> None:
    """Store a read mark and tell every member's connections (`read` frame) if it moved."""
    result = await _mark_read_in_db_thread(user, conversation_id, up_to)
    if result is not None:
        mark, member_ids = result
        frame = {
            "type": "read",
            "conversation": conversation_id,
            "user": user.username,
            "user_id": user.pk,
            "up_to": mark,
        }
        await realtime.send_to_users(member_ids, frame)
