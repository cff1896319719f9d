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
