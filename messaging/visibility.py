"""Who may see whom: the read side of message requests and blocks (PROTOCOL §6).

Two users are *in touch* when they share a current conversation in which neither
membership is a pending request, and no block stands between them (either way). Only
users in touch get each other's `presence` frames. Inside one conversation, `typing` and
`read` frames cross only between members in touch there: while the conversation is a
pending request for one of its members, they reach nobody but the sender's own devices.
"""

from django.db.models import Q

from .models import Block, Membership


def blocked_between(user_id: int, other_ids) -> set[int]:
    """Those of `other_ids` with a block between them and `user_id`, either way."""
    others = list(other_ids)
    if not others:
        return set()
    rows = Block.objects.filter(
        Q(blocker_id=user_id, blocked_id__in=others) | Q(blocked_id=user_id, blocker_id__in=others)
    ).values_list("blocker_id", "blocked_id")
    return {blocked if blocker == user_id else blocker for blocker, blocked in rows}


def is_blocked(user_id: int, other_id: int) -> bool:
    """Whether a block stands between these two users, either way."""
    return bool(blocked_between(user_id, [other_id]))


def presence_peer_ids(user_id: int) -> set[int]:
    """The users in touch with this one (herself excluded): whose presence she is told,
    and who are told hers."""
    accepted = (
        Membership.objects.current()
        .filter(user_id=user_id, request=False)
        .values("conversation_id")
    )
    peers = set(
        Membership.objects.current()
        .filter(conversation_id__in=accepted, request=False)
        .exclude(user_id=user_id)
        .values_list("user_id", flat=True)
    )
    return peers - blocked_between(user_id, peers)


def in_touch(user_id: int, other_id: int) -> bool:
    return other_id in presence_peer_ids(user_id)


def frame_recipients(user_id: int, conversation_id: int) -> list[int]:
    """Of the conversation's current members, those who may get this user's `typing` and
    `read` frames there: herself (when she is one), and the others when no member has it
    as a pending request and no block stands between them and her. One query for the
    members and their request flags, one for blocks."""
    rows = list(
        Membership.objects.current()
        .filter(conversation_id=conversation_id)
        .values_list("user_id", "request")
    )
    others = [uid for uid, _ in rows if uid != user_id]
    pending = any(request for _, request in rows)
    allowed = (
        [] if pending or not others else sorted(set(others) - blocked_between(user_id, others))
    )
    return [user_id, *allowed] if len(others) < len(rows) else allowed
