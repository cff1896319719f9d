"""Read-side queries of messaging: access checks, lists, history and sync pages."""

from collections import defaultdict

import orjson
from django.db import connection
from django.db.models import Count, F, Q
from django.utils import timezone

from accounts.errors import ActionError
from accounts.models import User
from keys.models import Device

from .models import Block, Conversation, HistoryKey, Membership, Message, RosterRecord
from .wire import (
    MESSAGE_COLUMNS,
    conversation_dict,
    message_row_dict,
    roster_record_dict,
    stored_json,
)


def _blocks_of(user_ids) -> list[tuple[int, int]]:
    """(blocker, blocked) of every block made or received by these users."""
    ids = list(user_ids)
    return list(
        Block.objects.filter(Q(blocker_id__in=ids) | Q(blocked_id__in=ids)).values_list(
            "blocker_id", "blocked_id"
        )
    )


def _viewer_flags(viewer: Membership, members: list[Membership], blocks) -> dict:
    """What differs per viewer (§6): `request`, `blocked`, and whose read marks she may
    not see (every other member's while the conversation is a pending request for one of
    them; those with a block between them and her)."""
    me = viewer.user_id
    pending = viewer.request or any(member.request for member in members)
    apart = {b if a == me else a for a, b in blocks if me in (a, b)}
    hidden = {m.user_id for m in members if m.user_id != me and (pending or m.user_id in apart)}
    blocked = viewer.conversation.kind == Conversation.DIRECT and any(
        a == me and b != me and b in {m.user_id for m in members} for a, b in blocks
    )
    return {"request": viewer.request, "blocked": blocked, "hidden_marks": hidden}


def is_declined(membership: Membership) -> bool:
    """A request she deleted, with nothing newer since: left out of her list."""
    return (
        membership.request
        and membership.declined_seq is not None
        and membership.conversation.last_seq <= membership.declined_seq
    )


def require_membership(user, conversation_id: int, *, current: bool) -> Membership:
    """The user's membership (current, or former too when `current` is False).

    Raises `not_found` for an unknown conversation and `not_member` otherwise.
    """
    membership = (
        Membership.objects.select_related("conversation", "conversation__owner")
        .filter(conversation_id=conversation_id, user=user)
        .first()
    )
    if membership is None or (current and not membership.is_current):
        if not Conversation.objects.filter(pk=conversation_id).exists():
            raise ActionError("not_found", "No such conversation.")
        raise ActionError("not_member", "You are not a member of this conversation.")
    return membership


def reader_membership(user, conversation_id: int) -> Membership:
    """The user's membership, current or former, to read the conversation's messages by
    (`conversation_id`, `user_id`, `left_seq`; the conversation is not loaded): one plain
    SQL statement on every history page, where `require_membership`'s ORM query cost more
    CPU to build than to run. Raises as `require_membership(current=False)` does."""
    sql = _READER_SQL.format(membership=connection.ops.quote_name(Membership._meta.db_table))
    found = list(Membership.objects.raw(sql, [conversation_id, user.pk]))
    return found[0] if found else require_membership(user, conversation_id, current=False)


_READER_SQL = "SELECT * FROM {membership} WHERE conversation_id = %s AND user_id = %s"


def current_member_ids(conversation_id: int) -> list[int]:
    return list(
        Membership.objects.current()
        .filter(conversation_id=conversation_id)
        .values_list("user_id", flat=True)
    )


def current_members(conversation_id: int) -> list[Membership]:
    """The current memberships (with their users), in the order the members joined."""
    return list(
        Membership.objects.current()
        .filter(conversation_id=conversation_id)
        .select_related("user")
        .order_by("joined", "user_id")
    )


def co_member_ids(user_id: int) -> set[int]:
    """Users who share a current conversation with this one (herself excluded)."""
    conversation_ids = (
        Membership.objects.current().filter(user_id=user_id).values("conversation_id")
    )
    return set(
        Membership.objects.current()
        .filter(conversation_id__in=conversation_ids)
        .exclude(user_id=user_id)
        .values_list("user_id", flat=True)
    )


def unread_count(membership: Membership) -> int:
    """Messages of others after the read mark (and before leaving, for a former member)."""
    messages = Message.objects.filter(
        conversation_id=membership.conversation_id, seq__gt=membership.read_up_to
    ).exclude(sender_id=membership.user_id)
    if membership.left_seq is not None:
        messages = messages.filter(seq__lte=membership.left_seq)
    return messages.count()


def conversation_view(membership: Membership, members: list[Membership] | None = None) -> dict:
    """One conversation as its (current or former) member sees it."""
    conversation = membership.conversation
    if members is None:
        members = current_members(conversation.pk)
    return conversation_dict(
        conversation,
        members,
        unread=unread_count(membership),
        read_up_to=membership.read_up_to,
        **_viewer_flags(membership, members, _blocks_of([membership.user_id])),
    )


def conversation_views(
    conversation_id: int, extra_user_ids=(), members: list[Membership] | None = None
) -> dict[int, dict]:
    """user id -> the conversation as she sees it, for every current member and for the
    former members in `extra_user_ids`; four queries whatever the group's size."""
    conversation = Conversation.objects.select_related("owner").get(pk=conversation_id)
    if members is None:
        members = current_members(conversation_id)
    extra = set(extra_user_ids)
    viewers = list(
        Membership.objects.filter(conversation_id=conversation_id).filter(
            Q(left_seq__isnull=True) | Q(user_id__in=list(extra))
        )
    )
    with connection.cursor() as cursor:
        cursor.execute(_UNREAD_BY_MEMBER_SQL, [conversation_id])
        unread = dict(cursor.fetchall())
    blocks = _blocks_of(viewer.user_id for viewer in viewers)
    for viewer in viewers:
        viewer.conversation = conversation
    return {
        viewer.user_id: conversation_dict(
            conversation,
            members,
            unread=unread.get(viewer.user_id, 0),
            read_up_to=viewer.read_up_to,
            **_viewer_flags(viewer, members, blocks),
        )
        for viewer in viewers
    }


# What `unread_count` counts, for every membership of one conversation in one statement:
# the join condition keeps each member's scan to the seqs above her read mark.
_UNREAD_BY_MEMBER_SQL = (
    "SELECT m.user_id, COUNT(g.id) FROM messaging_membership m"
    " JOIN messaging_message g ON g.conversation_id = m.conversation_id"
    " AND g.seq > m.read_up_to AND (m.left_seq IS NULL OR g.seq <= m.left_seq)"
    " AND g.sender_id <> m.user_id"
    " WHERE m.conversation_id = %s GROUP BY m.user_id"
)


def conversations_for(user) -> list[dict]:
    """Every conversation the user is or was in, newest activity first, in five queries;
    requests she deleted are left out until a newer message arrives."""
    memberships = [
        m
        for m in Membership.objects.filter(user=user)
        .select_related("conversation", "conversation__owner")
        .order_by("-conversation__last_activity", "-conversation_id")
        if not is_declined(m)
    ]
    ids = [m.conversation_id for m in memberships]
    members: dict[int, list[Membership]] = {cid: [] for cid in ids}
    current = (
        Membership.objects.current()
        .filter(conversation_id__in=ids)
        .select_related("user")
        .order_by("joined", "user_id")
    )
    for row in current:
        members[row.conversation_id].append(row)
    unread = dict(
        Message.objects.filter(
            Q(conversation__memberships__left_seq__isnull=True)
            | Q(seq__lte=F("conversation__memberships__left_seq")),
            conversation__memberships__user=user,
            seq__gt=F("conversation__memberships__read_up_to"),
        )
        .exclude(sender=user)
        .values("conversation_id")
        .annotate(n=Count("id"))
        .values_list("conversation_id", "n")
    )
    blocks = _blocks_of([user.pk])
    return [
        conversation_dict(
            m.conversation,
            members[m.conversation_id],
            unread=unread.get(m.conversation_id, 0),
            read_up_to=m.read_up_to,
            **_viewer_flags(m, members[m.conversation_id], blocks),
        )
        for m in memberships
    ]


#: Beyond any seq (the largest bigint, which PostgreSQL and SQLite both hold).
_SEQ_MAX = 2**63 - 1
_SEQ, _CREATED = MESSAGE_COLUMNS.index("seq"), MESSAGE_COLUMNS.index("created")

# History and sync pages are one plain SQL statement each (like the send's reads, `actions.send_reads`):
# building and compiling the ORM's query cost more CPU than reading 100 rows. Columns in
# `wire.MESSAGE_COLUMNS`' order; the envelope and the blob ids come as the database's
# JSON text (psycopg reads jsonb as text under Django; SQLite stores text), never
# decoded here (`wire.stored_json`). `created` comes formatted by PostgreSQL as
# `accounts.wire.iso_utc` writes it (psycopg's datetime parsing and the formatting in
# Python were a third of the database thread's CPU in a sync), as a datetime elsewhere.
_PAGE_SQL = (
    "SELECT {columns} FROM {message} m JOIN {user} u ON u.id = m.sender_id"
    " WHERE m.conversation_id = %s AND m.seq > %s AND m.seq <= %s"
    " ORDER BY m.seq {order} LIMIT %s"
)
_CREATED_SQL = {
    # to_char's MS truncates to the millisecond, as iso_utc does.
    "postgresql": """to_char(m.created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')""",
}


def _page_sql(order: str) -> str:
    quote = connection.ops.quote_name

    def column(name: str) -> str:
        if name == "sender__username":
            return "u." + quote(User._meta.get_field("username").column)
        if name == "created" and connection.vendor in _CREATED_SQL:
            return _CREATED_SQL[connection.vendor]
        return "m." + quote(Message._meta.get_field(name).column)

    return _PAGE_SQL.format(
        columns=", ".join(column(name) for name in MESSAGE_COLUMNS),
        message=quote(Message._meta.db_table),
        user=quote(User._meta.db_table),
        order=order,
    )


def _page_rows(membership: Membership, after: int, up_to: int, *, newest: bool, limit: int):
    """Rows (`MESSAGE_COLUMNS`) of the messages with `after` < seq <= `up_to` that this
    member may read (all, or up to `left_seq` for a former member), the newest `limit`
    (descending) or the oldest (ascending)."""
    if membership.left_seq is not None:
        up_to = min(up_to, membership.left_seq)
    with connection.cursor() as cursor:
        cursor.execute(
            _page_sql("DESC" if newest else "ASC"),
            [membership.conversation_id, after, up_to, limit],
        )
        rows = cursor.fetchall()
    if rows and not isinstance(rows[0][_CREATED], str):  # a datetime: aware, as the ORM's
        rows = [(*row[:_CREATED], _aware(row[_CREATED]), *row[_CREATED + 1 :]) for row in rows]
    return rows


def _aware(moment):
    if moment is not None and timezone.is_naive(moment):
        return timezone.make_aware(moment, connection.timezone)
    return moment


def history_page(
    membership: Membership, before_seq: int | None, limit: int
) -> tuple[list[dict], bool]:
    """Up to `limit` messages below `before_seq` (the newest when None), ascending, as
    the member reads them (`served_messages`)."""
    up_to = _SEQ_MAX if before_seq is None else before_seq - 1
    page = _page_rows(membership, -1, up_to, newest=True, limit=limit + 1)
    has_more = len(page) > limit
    page = page[:limit]
    page.reverse()
    return served_messages(membership, page), has_more


def messages_after(membership: Membership, after_seq: int, limit: int) -> tuple[list[dict], bool]:
    """Up to `limit` messages with seq above `after_seq`, ascending, as the member reads
    them (`served_messages`), and whether more exist."""
    page = _page_rows(membership, after_seq, _SEQ_MAX, newest=False, limit=limit + 1)
    has_more = len(page) > limit
    return served_messages(membership, page[:limit]), has_more


def served_messages(membership: Membership, rows: list[tuple]) -> list[dict]:
    """Rows (`MESSAGE_COLUMNS`, ascending seq) of the member's conversation as she reads
    them (PROTOCOL §4, §7.3): the stored envelope and blob ids go out as the database's
    JSON text (`wire.stored_json`), except an envelope that gains history keys
    (`served_envelope`). One query for the page's history keys."""
    extra = (
        history_keys_of(
            membership.user_id, membership.conversation_id, rows[0][_SEQ], rows[-1][_SEQ]
        )
        if rows
        else {}
    )
    messages = []
    for row in rows:
        message = message_row_dict(row)
        message["envelope"] = served_envelope(message["envelope"], extra.get(message["id"]))
        message["blobs"] = stored_json(message["blobs"])
        messages.append(message)
    return messages


_HISTORY_KEYS_SQL = (
    "SELECT h.message_id, d.enc_kid, h.ek FROM {history_key} h"
    " JOIN {device} d ON d.id = h.device_id JOIN {message} m ON m.id = h.message_id"
    " WHERE d.user_id = %s AND d.revoked IS NULL"
    " AND m.conversation_id = %s AND m.seq >= %s AND m.seq <= %s"
)


def history_keys_of(
    user_id: int, conversation_id: int, first_seq: int, last_seq: int
) -> dict[int, dict[str, str]]:
    """message id -> {enc_kid: ek} of the history keys stored for the user's active
    devices (§7.3) and the conversation's messages with seq in [first_seq, last_seq]; one
    statement, whatever the page's size."""
    quote = connection.ops.quote_name
    sql = _HISTORY_KEYS_SQL.format(
        history_key=quote(HistoryKey._meta.db_table),
        device=quote(Device._meta.db_table),
        message=quote(Message._meta.db_table),
    )
    extra: dict[int, dict[str, str]] = defaultdict(dict)
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id, conversation_id, first_seq, last_seq])
        for message_id, enc_kid, ek in cursor.fetchall():
            extra[message_id][enc_kid] = ek
    return extra


def served_envelope(text: str | None, history_keys: dict[str, str] | None):
    """A stored envelope (JSON text, or None once taken back) as its reader gets it
    (§7.3): without history keys for her, the stored text itself (`wire.stored_json`);
    with them, the envelope decoded, its `keys` gaining each kid it does not hold yet (a
    new dict; the stored envelope never changes)."""
    if text is None or not history_keys:
        return stored_json(text)
    envelope = orjson.loads(text)
    keys = dict(envelope["keys"])
    for enc_kid, ek in history_keys.items():
        keys.setdefault(enc_kid, ek)
    return {**envelope, "keys": keys}


def sync_pages(user, cursors: dict[int, int], limit: int) -> list[tuple[int, object, bool, int]]:
    """For each (conversation, cursor): (id, messages or ActionError, has_more, new cursor).

    A conversation the user was never in gets `not_member`; a cursor above `last_seq`
    yields nothing and keeps the cursor.
    """
    memberships = {
        m.conversation_id: m
        for m in Membership.objects.filter(
            user=user, conversation_id__in=list(cursors)
        ).select_related("conversation")
    }
    pages = []
    for conversation_id, cursor in cursors.items():
        membership = memberships.get(conversation_id)
        if membership is None:
            error = ActionError("not_member", "You are not a member of this conversation.")
            error.extra["conversation"] = conversation_id
            pages.append((conversation_id, error, False, cursor))
            continue
        messages, has_more = messages_after(membership, cursor, limit)
        pages.append(
            (conversation_id, messages, has_more, messages[-1]["seq"] if messages else cursor)
        )
    return pages


def roster_records(conversation_id: int, after: int) -> list[dict]:
    """Every roster record of the conversation with n above `after`, ascending (§8)."""
    records = RosterRecord.objects.filter(conversation_id=conversation_id, n__gt=after).order_by(
        "n"
    )
    return [roster_record_dict(record) for record in records]
