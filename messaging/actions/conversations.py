"""Creating conversations (§4, §8) and telling members about them (`conversation` frames).

A direct conversation is made from one other user's name and keeps its two members
forever; a group is made from its `gid` and signed record 0 (see `rosters`).
"""

from django.db import IntegrityError, transaction

from accounts.errors import ActionError
from accounts.models import User

from .. import presence, queries, realtime, visibility
from ..models import Conversation, Membership


def publish_conversation(conversation_id: int, *, extra_user_ids=(), new_member_ids=()) -> None:
    """After commit: a `conversation` frame to each current member and to `extra_user_ids`
    (members who just left or were removed: their frame lists the members without them).

    `new_member_ids` just joined: each learns which members are online, and the online
    members learn that the new ones are (one `presence` frame per pair that is new).
    """

    def publish():
        members = queries.current_members(conversation_id)
        views = queries.conversation_views(conversation_id, extra_user_ids, members)
        for user_id, view in views.items():
            realtime.send_to_users_sync([user_id], {"type": "conversation", "conversation": view})
        new = set(new_member_ids)
        if not new:
            return
        online = presence.online_among(member.user_id for member in members)
        newcomers = [member for member in members if member.user_id in new]
        # only between users in touch (no pending request or block between them, §6)
        touch = {m.user_id: visibility.presence_peer_ids(m.user_id) for m in newcomers}
        for member in members:  # to a new member every online one, to the others the new ones
            told = members if member.user_id in new else newcomers
            for other in told:
                pair = (member.user_id, other.user_id)
                newcomer, peer = pair if member.user_id in touch else pair[::-1]
                if (
                    other.user_id != member.user_id
                    and other.user_id in online
                    and peer in touch[newcomer]
                ):
                    presence.announce_sync([member.user_id], other.user, True)

    transaction.on_commit(publish)


def active_users(usernames: list[str]) -> list[User]:
    """The active users of these names, in order; any unknown is `not_found` (`usernames`)."""
    users = {u.username: u for u in User.objects.filter(username__in=usernames, is_active=True)}
    unknown = [name for name in usernames if name not in users]
    if unknown:
        raise ActionError(
            "not_found", f"No such user: {', '.join(unknown[:5])}.", usernames=unknown
        )
    return [users[name] for name in usernames]


def create_direct(creator: User, usernames: list[str]) -> tuple[Conversation, bool]:
    """The direct conversation of the creator and the one other user named (the creator's
    own name may be listed too); returns (conversation, created), the existing one if any.

    No other user, or more than one, is `bad_request`; an unknown or inactive user is
    `not_found`; a block between the two, either way, is `forbidden` (§6). A new one is a
    message request for the other user when she never wrote to the creator
    (`requests.is_request_for`); they are not told each other's presence until she accepts.
    """
    from .requests import check_direct_allowed, is_request_for  # requests imports this module

    others = list(dict.fromkeys(name for name in usernames if name != creator.username))
    if len(others) != 1:
        raise ActionError(
            "bad_request",
            "A direct conversation names exactly one other user; a group is made with its "
            "gid and roster.",
            fields={"members": ["empty" if not others else "more than one other user"]},
        )
    (other,) = active_users(others)
    check_direct_allowed(creator.pk, other.pk)
    low, high = sorted([creator.pk, other.pk])
    key = f"{low}:{high}"
    existing = Conversation.objects.filter(direct_key=key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(kind=Conversation.DIRECT, direct_key=key)
            Membership.objects.bulk_create(
                [
                    Membership(conversation=conversation, user=creator),
                    Membership(
                        conversation=conversation,
                        user=other,
                        request=is_request_for(other.pk, creator.pk),
                    ),
                ]
            )
    except IntegrityError:  # created concurrently by the other side
        return Conversation.objects.get(direct_key=key), False
    publish_conversation(conversation.pk, new_member_ids=(creator.pk, other.pk))
    return conversation, True
