"""Read marks: how far a member has read, told to every member when it moves (§5)."""

from django.db import connection

from accounts.models import User

from .. import dbthread, queries, realtime, visibility
from ..models import Conversation, Membership

# One read frame per message a bot handles: plain statements, and no write (no SQLite
# write lock) when the mark does not move. The ORM version took ~4 ms of CPU per frame
# on the database thread that the sends share.
_MARK_SQL = (
    "SELECT m.id, m.read_up_to, c.last_seq FROM {membership} m"
    " JOIN {conversation} c ON c.id = m.conversation_id"
    " WHERE m.conversation_id = %s AND m.user_id = %s AND m.left_seq IS NULL"
)
_RAISE_SQL = "UPDATE {membership} SET read_up_to = %s WHERE id = %s AND read_up_to < %s"


def _sql(template: str) -> str:
    quote = connection.ops.quote_name
    return template.format(
        membership=quote(Membership._meta.db_table),
        conversation=quote(Conversation._meta.db_table),
    )


def mark_read(user: User, conversation_id: int, up_to: int) -> tuple[int, list[int]] | None:
    """Raise the read mark to `up_to` (capped at `last_seq`); returns (mark, whom to tell)
    if it moved: her own devices, and the members she is in touch with there (§6: not
    while it is a pending request, not across a block). `not_found` / `not_member` as
    `queries.require_membership`.

    The raise is one conditional UPDATE (`read_up_to < mark`): `last_seq` only grows, so
    two marks racing leave the higher one, and a mark that does not move writes nothing.
    """
    with connection.cursor() as cursor:
        cursor.execute(_sql(_MARK_SQL), [conversation_id, user.pk])
        row = cursor.fetchone()
        if row is None:  # the precise error (or, had she just joined, no mark to move)
            queries.require_membership(user, conversation_id, current=True)
            return None
        membership_id, read_up_to, last_seq = row
        mark = min(up_to, last_seq)
        if mark <= read_up_to:
            return None
        cursor.execute(_sql(_RAISE_SQL), [mark, membership_id, mark])
        if not cursor.rowcount:
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
