"""WebSocket auth in batches (chatsite/wsauth.py): a batch of handshakes' sessions
resolves to exactly the users Django's own `auth.get_user` gives, one by one."""

from types import SimpleNamespace

import pytest
from django.contrib import auth
from django.contrib.sessions.backends.db import SessionStore

from accounts.models import User
from chatsite.wsauth import _session_users

pytestmark = pytest.mark.django_db


def _sessions(*keys):
    return [SessionStore(key) for key in keys]


def test_a_batch_resolves_each_session_as_get_user_does(make_user):
    alice, bob, carol = (make_user(name, with_device=False) for name in ("ann", "ben", "cat"))
    key = {u.username: u.api.http.cookies["sessionid"].value for u in (alice, bob, carol)}
    User.objects.filter(pk=bob.user_id).update(is_active=False)
    cat = User.objects.get(pk=carol.user_id)
    cat.set_password("another horse battery staple")  # her session's hash no longer verifies
    User.objects.filter(pk=cat.pk).update(password=cat.password)
    keys = [key["ann"], key["ben"], key["cat"], "no-such-session-key-000000000000", key["ann"]]
    got = _session_users(_sessions(*keys))  # first: get_user flushes cat's stale session
    expected = [auth.get_user(SimpleNamespace(session=s)).pk for s in _sessions(*keys)]
    assert expected == [alice.user_id, None, None, None, alice.user_id]
    assert [user.pk for user in got] == expected
    assert got[0] is not got[4]  # each socket its own User


def test_the_stack_gives_the_cookies_session_and_user_and_leaves_send_alone(make_user):
    """The socket sees the session the cookie names and its user; the `send` it gets is
    the server's own (channels' SessionMiddleware wrapped it, asking the session about
    itself on every frame)."""
    from asgiref.sync import async_to_sync

    from chatsite.wsauth import SessionAuthMiddlewareStack

    alice = make_user("ann", with_device=False)
    key = alice.api.http.cookies["sessionid"].value
    seen = {}

    async def app(scope, receive, send):
        seen.update(scope=scope, send=send)

    async def server_send(message):
        pass

    scope = {"type": "websocket", "headers": [(b"cookie", f"sessionid={key}".encode())]}
    async_to_sync(SessionAuthMiddlewareStack(app))(scope, None, server_send)
    assert seen["send"] is server_send
    assert isinstance(seen["scope"]["session"], SessionStore)
    assert seen["scope"]["session"].session_key == key
    assert seen["scope"]["user"].pk == alice.user_id
