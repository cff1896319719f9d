"""Who may see whom: the read side of message requests and blocks (PROTOCOL §6).

Two users are *in touch* when they share a current conversation in which neither
membership is a pending request, and no block stands between them (either way). Only
users in touch get each other's `presence` frames. Inside one conversation, `typing` and
`read` frames cross only between members in touch there: while the conversation is a
pending request for one of its members, they reach nobody but the sender's own devices.
"""

from django.db import connection

from .models import Block, Membership

# The per-send and per-frame lookups are plain SQL: building the same queries through the
# ORM cost more than ten times the statement itself (1.4 ms of CPU against 0.08 ms for
# the block check), on every direct send and every typing/read frame.
_BLOCK = connection.ops.quote_name(Block._meta.db_table)
_MEMBERSHIP = connection.ops.quote_name(Membership._meta.db_table)
_BLOCKED_PAIR_SQL = (
    f"SELECT 1 FROM {_BLOCK} WHERE (blocker_id = %s AND blocked_id = %s)"
    " OR (blocker_id = %s AND blocked_id = %s)"
)
_BLOCKED_AMONG_SQL = (
    f"SELECT blocker_id, blocked_id FROM {_BLOCK}"
    " WHERE (blocker_id = %s AND blocked_id IN ({ids}))"
    " OR (blocked_id = %s AND blocker_id IN ({ids}))"
)
_MEMBERS_SQL = (
    f"SELECT user_id, request FROM {_MEMBERSHIP} WHERE conversation_id = %s AND left_seq IS NULL"
)


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def blocked_between(user_id: int, other_ids) -> set[int]:
    """Those of `other_ids` with a block between them and `user_id`, either way."""
    others = [int(uid) for uid in other_ids]
    if not others:
        return set()
    sql = _BLOCKED_AMONG_SQL.format(ids=", ".join(["%s"] * len(others)))
    rows = _rows(sql, [user_id, *others, user_id, *others])
    return {blocked if blocker == user_id else blocker for blocker, blocked in rows}


def is_blocked(user_id: int, other_id: int) -> bool:
    """Whether a block stands between these two users, either way (one indexed lookup
    each way: the pair's unique constraint and `block_by_blocked`)."""
    return bool(_rows(_BLOCKED_PAIR_SQL, [user_id, other_id, other_id, user_id]))


#: The pairs of users in touch (``mine.user_id``, ``theirs.user_id``), as SQL to extend
#: with ``AND …`` conditions: a current conversation in common where neither membership
#: is a pending request, and no block between them either way. Its parameters come first
#: (`IN_TOUCH_PARAMS`). The one statement of the rule, for presence_peer_ids and for the
#: batched presence queries of `messaging.presence`.
IN_TOUCH_FROM = (
    f"FROM {_MEMBERSHIP} mine JOIN {_MEMBERSHIP} theirs"
    " ON theirs.conversation_id = mine.conversation_id AND theirs.user_id <> mine.user_id"
    " AND theirs.left_seq IS NULL AND theirs.request = %s"
    " WHERE mine.left_seq IS NULL AND mine.request = %s"
    f" AND NOT EXISTS (SELECT 1 FROM {_BLOCK} b WHERE"
    " (b.blocker_id = mine.user_id AND b.blocked_id = theirs.user_id)"
    " OR (b.blocker_id = theirs.user_id AND b.blocked_id = mine.user_id))"
)
IN_TOUCH_PARAMS = (False, False)


def presence_peer_ids(user_id: int) -> set[int]:
    """The users in touch with this one (herself excluded): whose presence she is told,
    and who are told hers."""
    sql = f"SELECT DISTINCT theirs.user_id {IN_TOUCH_FROM} AND mine.user_id = %s"
    return {uid for (uid,) in _rows(sql, [*IN_TOUCH_PARAMS, user_id])}


def in_touch(user_id: int, other_id: int) -> bool:
    return other_id in presence_peer_ids(user_id)


def frame_recipients(user_id: int, conversation_id: int) -> list[int]:
    """Of the conversation's current members, those who may get this user's `typing` and
    `read` frames there: herself (when she is one), and the others when no member has it
    as a pending request and no block stands between them and her. One query for the
    members and their request flags, one for blocks."""
    rows = _rows(_MEMBERS_SQL, [conversation_id])
    others = [uid for uid, _ in rows if uid != user_id]
    pending = any(bool(request) for _, request in rows)
    allowed = (
        [] if pending or not others else sorted(set(others) - blocked_between(user_id, others))
    )
    return [user_id, *allowed] if len(others) < len(rows) else allowed
