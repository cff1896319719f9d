"""Session auth for WebSockets in one database hop that keeps its connection.

Channels' `AuthMiddlewareStack` reads the session row and then the user row through
`database_sync_to_async`, which opens and closes a database connection for every call
while CONN_MAX_AGE is 0: in a connect storm that was a third of daphne's CPU (py-spy:
`get_new_connection` and `_close` alone 16%). Here the user is resolved by Django's own
`auth.get_user` (session hash check included, as for HTTP) on the database thread of
`messaging.dbthread`, whose connection stays open between calls. Handshakes that come
while that thread is busy are resolved together in its next hop (`messaging.batching`):
the plain case (a live session of an active user, logged in by `ModelBackend`, its hash
verified by the current key) with two queries for the whole batch, anything else by
`auth.get_user` one by one.
"""

import copy
from importlib import import_module
from types import SimpleNamespace

from channels.middleware import BaseMiddleware
from channels.sessions import CookieMiddleware
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from messaging.batching import Batcher


def _verified_users(sessions: list) -> dict[int, object]:
    """{index: user} for the sessions that pass every check of `auth.get_user`, done in
    bulk: the session rows in one query and their users in another (a storm of
    handshakes paid two ORM queries each, a third of the worker's CPU). Only the plain
    case is taken here: a database session backend, unexpired, logged in through
    `ModelBackend` (as settings list it), an active user, and a session hash that the
    current SECRET_KEY verifies. Every other session is left to `auth.get_user` itself
    (fallback keys, flushing a stale session, other backends)."""
    model_of = getattr(sessions[0], "get_model_class", None)
    if model_of is None:
        return {}
    keys = {s.session_key for s in sessions if s.session_key}
    rows = dict(
        model_of()
        .objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
        .values_list("session_key", "session_data")
    )
    user_model = get_user_model()
    claimed = {}
    for i, session in enumerate(sessions):
        text = rows.get(session.session_key)
        if text is None:
            continue
        data = session.decode(text)
        path = data.get(auth.BACKEND_SESSION_KEY)
        if path not in settings.AUTHENTICATION_BACKENDS:
            continue
        backend = auth.load_backend(path)
        if type(backend) is not ModelBackend or not data.get(auth.HASH_SESSION_KEY):
            continue
        try:
            user_id = user_model._meta.pk.to_python(data[auth.SESSION_KEY])
        except (KeyError, ValidationError):
            continue
        claimed[i] = (user_id, backend, data[auth.HASH_SESSION_KEY])
    users = user_model._default_manager.in_bulk({user_id for user_id, _, _ in claimed.values()})
    verified, given = {}, set()
    for i, (user_id, backend, session_hash) in claimed.items():
        user = users.get(user_id)
        if user is None or not backend.user_can_authenticate(user):
            continue
        if constant_time_compare(session_hash, user.get_session_auth_hash()):
            verified[i] = copy.copy(user) if user_id in given else user  # one per socket
            given.add(user_id)
    return verified


def _session_users(sessions: list) -> list:
    """Each session's user, or AnonymousUser (also for an inactive one), as for HTTP
    (`_verified_users`, else `auth.get_user`); an error in one session's place (the
    others are still resolved), except a database error, which fails the batch (and
    `messaging.dbthread` drops the connection)."""
    verified = _verified_users(sessions)
    users = []
    for i, session in enumerate(sessions):
        if i in verified:
            users.append(verified[i])
            continue
        try:
            users.append(auth.get_user(SimpleNamespace(session=session)))
        except DatabaseError:
            raise
        except Exception as exc:  # noqa: BLE001 - raised to that handshake alone
            users.append(exc)
    return users


_session_user_in_db = Batcher(_session_users)


class WebSocketSessionMiddleware(BaseMiddleware):
    """Sets `scope["session"]` to the session the session cookie names (a `SessionStore`
    of `SESSION_ENGINE`, read when first used), as Django's SessionMiddleware does for
    HTTP; `CookieMiddleware` must be above.

    Channels' `SessionMiddleware` does the same and also wraps `send`, to save a modified
    session at `http.response.start`: a WebSocket never sends one, yet the wrapper asked
    the session whether it was modified or empty on every frame (about 7 µs a frame, on
    each of the three a message costs). Nothing here saves a session: a socket only reads
    it.
    """

    def __init__(self, inner):
        super().__init__(inner)
        self.session_store = import_module(settings.SESSION_ENGINE).SessionStore

    async def __call__(self, scope, receive, send):
        if "cookies" not in scope:
            raise ValueError("WebSocketSessionMiddleware needs CookieMiddleware above it.")
        key = scope["cookies"].get(settings.SESSION_COOKIE_NAME)
        scope = dict(scope, session=self.session_store(key))
        return await super().__call__(scope, receive, send)


class SessionAuthMiddleware(BaseMiddleware):
    """Sets `scope["user"]` from `scope["session"]` (a session middleware must be above)."""

    async def __call__(self, scope, receive, send):
        if "session" not in scope:
            raise ValueError("SessionAuthMiddleware needs a session middleware above it.")
        scope = dict(scope)
        if "user" not in scope:
            scope["user"] = await _session_user_in_db(scope["session"])
        return await super().__call__(scope, receive, send)


def SessionAuthMiddlewareStack(inner):  # noqa: N802 (named like channels' AuthMiddlewareStack)
    """Cookies, session and user, as `channels.auth.AuthMiddlewareStack`."""
    return CookieMiddleware(WebSocketSessionMiddleware(SessionAuthMiddleware(inner)))
