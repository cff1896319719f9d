"""Shared fixtures: real processes (tests.support), device keys, in-process chat users."""

import itertools

import pytest

from chatclient import protocol

pytest_plugins = ["tests.support.fixtures", "tests.support.scheduling"]

_key_pool: list[protocol.DeviceKeys] = []
_key_counter = itertools.count()


def fresh_device_keys() -> protocol.DeviceKeys:
    """New 2048-bit device keys (the smallest PROTOCOL allows: tests stay fast) holding an
    identity key of their own, which a user's first device brings to the account
    (`ChatUser.register_device`, `live_user`); later devices are certified by that one."""
    keys = protocol.generate_device_keys(2048)
    return keys.with_identity(protocol.generate_identity_key(2048))


@pytest.fixture
def device_keys():
    """Factory of distinct device keys, reused across tests of one session (keys are unique
    per database, and every test gets a fresh database)."""
    used: list[int] = []

    def make() -> protocol.DeviceKeys:
        index = len(used)
        used.append(index)
        while len(_key_pool) <= index:
            _key_pool.append(fresh_device_keys())
        return _key_pool[index]

    return make


@pytest.fixture
def make_user(device_keys):
    """Factory: a registered, logged-in user with one device (in-process client)."""
    from tests.inprocess import register

    def make(username: str, *, with_device: bool = True):
        user = register(username)
        if with_device:
            user.register_device(device_keys())
        return user

    return make


@pytest.fixture
def trio(make_user):
    """alice, bob and carol, each with a device; alice and bob share a direct conversation,
    which bob accepted."""
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    direct = alice.api.post("/api/conversations/", {"members": ["bob"]}).json_body["conversation"]
    bob.api.post(f"/api/conversations/{direct['id']}/accept/")  # not a message request (§6)
    return alice, bob, carol, direct


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Argon2 is the production hasher (see test_accounts_api); tests hash cheaply."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Each test starts with no request counted against the rate limits (the cache holds
    django-ratelimit's counts; user ids and the test client's address repeat across tests)."""
    from django.core.cache import cache

    cache.clear()
