"""Database work from the event loop: one hop to the database thread per socket event.

With PostgreSQL's pool (settings `DB_POOL`, Django's `OPTIONS["pool"]`) this is
Channels' own `database_sync_to_async`: the hop borrows a pooled connection and gives it
back, so no hop pays for a new one.

Without a pool (SQLite, or DB_POOL=0), `database_sync_to_async` would close the thread's
connection after every call while CONN_MAX_AGE is 0 (our default), so every hop would
pay for a new connection (on PostgreSQL a backend fork and login, on SQLite opening the
file and its pragmas). `database_call` then runs on the same thread (asgiref's
thread-sensitive one) and keeps the connection: a connection that had errors is closed
first if it no longer answers, and a call that raises a `DatabaseError` closes it, so
the next call starts on a fresh one.
"""

import functools
from collections.abc import Callable

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import DatabaseError, connection


def pooled() -> bool:
    """Whether the default database hands out pooled connections."""
    return bool(connection.settings_dict.get("OPTIONS", {}).get("pool"))


def _check_connection() -> None:
    """Close this thread's connection if it had errors and no longer answers."""
    if connection.connection is not None and connection.errors_occurred:
        if connection.is_usable():
            connection.errors_occurred = False
        else:
            connection.close()


def _keeping_connection(fn: Callable) -> Callable:
    """`fn` run after `_check_connection`, closing the connection if it raised a DatabaseError."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        _check_connection()
        try:
            return fn(*args, **kwargs)
        except DatabaseError:
            connection.close()
            raise

    return run


def database_call(fn: Callable) -> Callable:
    """An awaitable form of `fn` for the event loop (see the module's docstring)."""
    if pooled():
        return database_sync_to_async(fn)
    return sync_to_async(_keeping_connection(fn), thread_sensitive=True)
