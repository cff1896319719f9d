"""JSON shapes of messages and conversations, as every API and frame shows them."""

import orjson

from accounts.wire import iso_utc

_FRAME_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps_frame(frame: dict) -> str:
    """A frame (or any server JSON) as compact UTF-8 JSON text, as `json.dumps(frame,
    separators=(",", ":"), ensure_ascii=False)` writes it, by orjson (~10x faster).

    Non-string keys become strings as with `json`; what is not JSON (NaN, a lone
    surrogate, an integer beyond 64 bits) raises TypeError instead of being written.
    Input is not parsed here: frames from clients go through `accounts.wire.loads_strict`,
    which refuses duplicated keys (orjson would keep the last)."""
    return orjson.dumps(frame, option=_FRAME_OPTIONS).decode()


def dumps_body(value) -> bytes:
    """`dumps_frame` as UTF-8 bytes, for an HTTP response body (no str in between)."""
    return orjson.dumps(value, option=_FRAME_OPTIONS)


def stored_json(text: str | None) -> orjson.Fragment | None:
    """JSON text as the database holds it (a jsonb or SQLite JSON column read as text),
    written into a frame or body verbatim by `dumps_frame`/`dumps_body`: not decoded, not
    re-encoded. The same value, not the same bytes: PostgreSQL writes jsonb as
    `{"a": 1, "b": [2, 3]}` (a space after `:` and `,`), SQLite keeps what `json.dumps`
    stored. None (SQL NULL) stays None.

    Only for values the server stored itself through its schemas: the text is not
    checked here."""
    return None if text is None else orjson.Fragment(text)


def message_dict(message, sender_username: str) -> dict:
    """A stored message (PROTOCOL §4): metadata and the envelope as the sender made it
    (null once taken back, with `deleted` true), and the ids of the blobs it named."""
    return message_row_dict(
        (
            message.pk,
            message.conversation_id,
            message.seq,
            message.sender_id,
            sender_username,
            message.sender_device_id,
            message.client_msg_id,
            message.created,
            message.envelope,
            message.blob_ids,
            message.deleted,
        )
    )


#: The columns `message_row_dict` reads, in its order (`messaging.queries` selects them).
MESSAGE_COLUMNS = (
    "id",
    "conversation_id",
    "seq",
    "sender_id",
    "sender__username",
    "sender_device_id",
    "client_msg_id",
    "created",
    "envelope",
    "blob_ids",
    "deleted",
)


def message_row_dict(row: tuple) -> dict:
    """A stored message (PROTOCOL §4) from a row of `MESSAGE_COLUMNS`: history and sync
    pages read rows, not a Message and a User per row; `message_dict` fills one from a
    Message. `created` is a datetime, or the text `iso_utc` makes of it (as the database
    formatted it for a page)."""
    pk, conversation, seq, sender_id, sender, device, msg_id, created, envelope, blobs, deleted = (
        row
    )
    return {
        "id": pk,
        "conversation": conversation,
        "seq": seq,
        "sender_id": sender_id,
        "sender": sender,
        "sender_device": device,
        "client_msg_id": msg_id,
        "created": created if isinstance(created, str) else iso_utc(created),
        "envelope": envelope,
        "blobs": blobs,
        "deleted": deleted,
    }


def roster_head(conversation) -> dict | None:
    """`{"n", "hash"}` of the conversation's last roster record, or None without a roster."""
    if conversation.roster_n is None:
        return None
    return {"n": conversation.roster_n, "hash": conversation.roster_hash}


def roster_record_dict(record) -> dict:
    """A stored roster record as served (§8): the nine signed fields and `created`."""
    return {
        "n": record.n,
        "prev": record.prev,
        "op": record.op,
        "subjects": record.subjects,
        "by": record.by_id,
        "title": record.title,
        "sig_kid": record.sig_kid,
        "sig": record.sig,
        "hash": record.hash,
        "created": iso_utc(record.created),
    }


def conversation_dict(
    conversation,
    members: list,
    *,
    unread: int,
    read_up_to: int,
    request: bool = False,
    blocked: bool = False,
    hidden_marks=frozenset(),
) -> dict:
    """A conversation as one user sees it; `members` are the current memberships.

    Besides PROTOCOL's fields: `last_activity`, the viewer's `read_up_to`, `read_marks`
    (user id -> read mark of every current member, for read receipts; 0 for the members
    in `hidden_marks`, whose receipts the viewer may not see), and `blocked` (the viewer
    blocked the other member of this direct conversation). `request` is true while the
    conversation is a message request for the viewer (§6).
    """
    owner = conversation.owner
    gid = conversation.gid
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
        "read_marks": {
            str(member.user_id): 0 if member.user_id in hidden_marks else member.read_up_to
            for member in members
        },
        "gid": str(gid) if gid is not None else None,
        "roster_head": roster_head(conversation),
        "request": request,
        "blocked": blocked,
    }
