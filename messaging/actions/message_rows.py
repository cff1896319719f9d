"""Message rows into the database in one plain INSERT (the send path's only write of them).

`Message.save()` and `bulk_create` build the same statement through the ORM's query
compiler on every call, which cost about as much CPU as the rest of a send's statements
together. Here the statement's text is built once per row count and each value is
prepared by its own field (`Field.get_db_prep_save`), as the ORM prepares it, so the
stored values are the same.
"""

from functools import lru_cache

from django.db import connection

from ..models import Message

#: The columns a send writes; the rest take their database defaults as the ORM's would.
COLUMNS = (
    "conversation_id",
    "seq",
    "sender_id",
    "sender_device_id",
    "client_msg_id",
    "created",
    "envelope",
    "size",
    "n",
    "blob_ids",
    "deleted",
)
_FIELDS = tuple(Message._meta.get_field(name) for name in COLUMNS)


def insert_messages(messages: list[Message]) -> None:
    """INSERT these unsaved messages in one statement and set each one's `pk`.

    A constraint the rows break (a replay's (sender, client_msg_id)) raises Django's
    `IntegrityError`, as `bulk_create` does, and inserts none of them.
    """
    values = [
        field.get_db_prep_save(getattr(message, field.attname), connection)
        for message in messages
        for field in _FIELDS
    ]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(connection.vendor, len(messages)), values)
        ids = {(sender_id, client_msg_id): pk for pk, sender_id, client_msg_id in cursor}
    for message in messages:
        message.pk = ids[message.sender_id, message.client_msg_id]
        message._state.adding = False
        message._state.db = connection.alias


@lru_cache(maxsize=256)
def _insert_sql(vendor: str, rows: int) -> str:
    """`INSERT … VALUES (…), … RETURNING id, sender_id, client_msg_id` for `rows` rows
    (each id is matched by its row's unique pair: SQLite does not promise RETURNING's
    order)."""
    quote = connection.ops.quote_name
    row = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
    return (
        f"INSERT INTO {quote(Message._meta.db_table)}"
        f" ({', '.join(quote(f.column) for f in _FIELDS)})"
        f" VALUES {', '.join([row] * rows)}"
        f" RETURNING {quote(Message._meta.pk.column)}, sender_id, client_msg_id"
    )
