"""Session auth for WebSockets in one database hop that keeps its connection.

Channels' `AuthMiddlewareStack` reads the session row and then the user row through
`database_sync_to_async`, which opens and closes a database connection for every call
while CONN_MAX_AGE is 0: in a connect storm that was a third of daphne's CPU (py-spy:
`get_new_connection` and `_close` alone 16%). Here the user is resolved by Django's own
`auth.get_user` (session hash check included, as for HTTP) on the database thread of
`messaging.dbthread`, whose connection stays open between calls; handshakes that come
while that thread is busy are resolved together in its next hop (`messaging.batching`),
each by its own `get_user`.
"""

from types import SimpleNamespace

from channels.middleware import BaseMiddleware
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.contrib import auth
from django.db import DatabaseError

from messaging.batching import Batcher


def _session_users(sessions: list) -> list:
    """Each session's user, or AnonymousUser (also for an inactive one), as for HTTP; an
    error in one session's place (the others are still resolved), except a database
    error, which fails the batch (and `messaging.dbthread` drops the connection)."""
    users = []
    for session in sessions:
        try:
            users.append(auth.get_user(SimpleNamespace(session=session)))
        except DatabaseError:
            raise
        except Exception as exc:  # noqa: BLE001 - raised to that handshake alone
            users.append(exc)
    return users


_session_user_in_db = Batcher(_session_users)


class SessionAuthMiddleware(BaseMiddleware):
    """Sets `scope["user"]` from `scope["session"]` (SessionMiddleware must be above)."""

    async def __call__(self, scope, receive, send):
        if "session" not in scope:
            raise ValueError("SessionAuthMiddleware needs SessionMiddleware above it.")
        scope = dict(scope)
        if "user" not in scope:
            scope["user"] = await _session_user_in_db(scope["session"])
        return await super().__call__(scope, receive, send)


def SessionAuthMiddlewareStack(inner):  # noqa: N802 (named like channels' AuthMiddlewareStack)
    """Cookies, session and user, as `channels.auth.AuthMiddlewareStack`."""
    return CookieMiddleware(SessionMiddleware(SessionAuthMiddleware(inner)))
