"""Message requests and blocks (PROTOCOL §6, "Message requests"; docs/protocol.md).

* A direct conversation is a **request** for the member who did not start it when she has
  never written to the starter: she has sent no message in any conversation he is or was
  a member of. It stays one until she accepts it (`accept`) or sends in it (`sending`
  calls `accepted_by_sending`). Until then no `presence`, `typing` or `read` frames cross
  between them through it (`messaging.visibility`); messages do.
* She may **delete** (decline) it (`decline`): it leaves her list, on all her devices,
  until he writes again; it stays a request.
* A **block** (`block`, `unblock`) stands between two users either way: neither can start
  or send in their direct conversation, the blocked one cannot add the blocker to a group,
  and no presence, typing or read frames cross between them. A group both are in is left
  as it is: its roster is signed by its members and every message is sealed to all of them.

Refusals are `forbidden` (403) and change nothing.
"""

from django.db import IntegrityError, connection, transaction

from accounts.errors import ActionError
from accounts.models import User

from .. import presence, queries, realtime, visibility
from ..models import Block, Conversation, Membership, Message
from .conversations import active_users, publish_conversation


def is_request_for(recipient_id: int, starter_id: int) -> bool:
    """Whether a direct conversation the starter opens now is a request for the recipient:
    she has never sent a message in a conversation he is or was a member of."""
    return not Message.objects.filter(
        sender_id=recipient_id, conversation__memberships__user_id=starter_id
    ).exists()


def check_direct_allowed(user_id: int, other_id: int) -> None:
    """`forbidden` when a block stands between the two (starting or sending in their direct
    conversation)."""
    if visibility.is_blocked(user_id, other_id):
        raise ActionError(
            "forbidden",
            "A block stands between you and this user: unblock them first, or they "
            "do not accept messages from you.",
        )


def check_can_add(actor_id: int, user_ids) -> None:
    """`forbidden` when any of `user_ids` blocked the actor (adding them to a group)."""
    if Block.objects.filter(blocker_id__in=list(user_ids), blocked_id=actor_id).exists():
        raise ActionError("forbidden", "One of these users does not accept being added by you.")


def _announce_touch(a: int, b: int, *, was_in_touch: bool) -> None:
    """After commit: if the two came in touch (or lost it), tell each online one that the
    other is online (or offline, when that one was seen online before)."""

    def announce():
        now_in_touch = visibility.in_touch(a, b)
        if now_in_touch == was_in_touch:
            return
        online = presence.online_among([a, b])
        users = {u.pk: u for u in User.objects.filter(pk__in=[a, b]).only("pk", "username")}
        for subject, told in ((a, b), (b, a)):
            if subject in online and told in online:
                presence.announce_sync([told], users[subject], now_in_touch)

    transaction.on_commit(announce)


def other_in_direct(direct_key: str, user_id: int) -> int:
    """The member of a direct conversation (`direct_key` "low:high") who is not `user_id`."""
    low, high = (int(part) for part in direct_key.split(":"))
    return high if low == user_id else low


def _direct_other(membership: Membership) -> int | None:
    """The other member of a direct conversation (None for a group)."""
    conversation = membership.conversation
    if conversation.kind != Conversation.DIRECT:
        return None
    return other_in_direct(conversation.direct_key, membership.user_id)


def accept(user: User, conversation_id: int) -> dict:
    """Accept a message request; returns the conversation as she now sees it. Accepting a
    conversation that is not (or no longer) a request changes nothing. Her devices and his
    get a `conversation` frame, and presence starts to flow both ways."""
    membership = queries.require_membership(user, conversation_id, current=True)
    if membership.request:
        _clear_request(membership)
    return queries.conversation_view(membership)


def _clear_request(membership: Membership) -> None:
    with transaction.atomic():
        Membership.objects.filter(pk=membership.pk).update(request=False, declined_seq=None)
        membership.request, membership.declined_seq = False, None
        publish_conversation(membership.conversation_id)
        other = _direct_other(membership)
        if other is not None:
            _announce_touch(membership.user_id, other, was_in_touch=False)


_ACCEPT_BY_SENDING_SQL = (
    f"UPDATE {connection.ops.quote_name(Membership._meta.db_table)}"
    " SET request = %s, declined_seq = NULL"
    " WHERE conversation_id = %s AND user_id = %s AND request"
)


def accepted_by_sending(sender_id: int, conversation_id: int) -> bool:
    """Inside the send's transaction: her send accepts the request she had here; True
    when it did (the frames of `accept` follow the commit). One plain UPDATE on every
    direct send (the ORM's cost more than the statement), matching no row but the first
    time."""
    with connection.cursor() as cursor:
        cursor.execute(_ACCEPT_BY_SENDING_SQL, [False, conversation_id, sender_id])
        cleared = cursor.rowcount
    if cleared:
        publish_conversation(conversation_id)
        membership = Membership.objects.select_related("conversation").get(
            conversation_id=conversation_id, user_id=sender_id
        )
        other = _direct_other(membership)
        if other is not None:
            _announce_touch(sender_id, other, was_in_touch=False)
    return bool(cleared)


def decline(user: User, conversation_id: int) -> None:
    """Delete a pending request: it leaves her list (and her devices', told by a
    `conversation` frame with `"declined": true`) and her unread count, until the starter
    writes again; it stays a request. Anything but a pending request is `bad_request`."""
    membership = queries.require_membership(user, conversation_id, current=True)
    if not membership.request:
        raise ActionError("bad_request", "This conversation is not a message request.")
    last_seq = membership.conversation.last_seq
    with transaction.atomic():
        Membership.objects.filter(pk=membership.pk).update(
            declined_seq=last_seq, read_up_to=last_seq
        )
    membership.refresh_from_db()
    view = {**queries.conversation_view(membership), "declined": True}
    realtime.send_to_users_sync([user.pk], {"type": "conversation", "conversation": view})


def _target(user: User, username: str) -> User:
    if username == user.username:
        raise ActionError("bad_request", "You cannot block yourself.")
    (target,) = active_users([username])
    return target


def _direct_id(a: int, b: int) -> int | None:
    low, high = sorted([a, b])
    return (
        Conversation.objects.filter(direct_key=f"{low}:{high}").values_list("pk", flat=True).first()
    )


def block(user: User, username: str) -> None:
    """Block a user (again: nothing changes). Presence stops between them; their direct
    conversation, if any, is published again (its `blocked` flag, read marks)."""
    target = _target(user, username)
    was_in_touch = visibility.in_touch(user.pk, target.pk)
    try:
        with transaction.atomic():
            _, created = Block.objects.get_or_create(blocker=user, blocked=target)
            if created:
                _after_change(user.pk, target.pk, was_in_touch)
    except IntegrityError:  # the same block, made at the same moment
        pass


def unblock(user: User, username: str) -> None:
    """Lift her block of this user (none: nothing changes)."""
    target = _target(user, username)
    was_in_touch = visibility.in_touch(user.pk, target.pk)
    with transaction.atomic():
        deleted, _ = Block.objects.filter(blocker=user, blocked=target).delete()
        if deleted:
            _after_change(user.pk, target.pk, was_in_touch)


def _after_change(a: int, b: int, was_in_touch: bool) -> None:
    direct = _direct_id(a, b)
    if direct is not None:
        publish_conversation(direct)
    _announce_touch(a, b, was_in_touch=was_in_touch)
