"""JSON shapes of messages and conversations, as every API and frame shows them."""

from accounts.wire import iso_utc


def message_dict(message, sender_username: str) -> dict:
    """A stored message (PROTOCOL §4): metadata and the envelope as the sender made it."""
    return {
        "id": message.pk,
        "conversation": message.conversation_id,
        "seq": message.seq,
        "sender_id": message.sender_id,
        "sender": sender_username,
        "sender_device": message.sender_device_id,
        "client_msg_id": message.client_msg_id,
        "created": iso_utc(message.created),
        "envelope": message.envelope,
    }


def conversation_dict(conversation, members: list, *, unread: int, read_up_to: int) -> dict:
    """A conversation as one user sees it; `members` are the current memberships.

    Besides PROTOCOL's fields: `last_activity`, the viewer's `read_up_to`, and
    `read_marks` (user id -> read mark of every current member, for read receipts).
    """
    owner = conversation.owner
    return {
        "id": conversation.pk,
        "kind": conversation.kind,
        "title": conversation.title,
        "members": [member.user.as_ref() for member in members],
        "owner": owner.as_ref() if owner is not None else None,
        "last_seq": conversation.last_seq,
        "unread": unread,
        "created": iso_utc(conversation.created),
        "last_activity": iso_utc(conversation.last_activity),
        "read_up_to": read_up_to,
        "read_marks": {str(member.user_id): member.read_up_to for member in members},
    }
