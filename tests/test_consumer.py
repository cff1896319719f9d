"""The chat WebSocket (PROTOCOL §5): closes, bad frames, typing, read, presence, sync,
device changes, roster changes (`conversation` frames), rate limits. Real ASGI app, database and channel layer."""

import asyncio
import dataclasses
import json

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from accounts.actions import deactivate_user
from accounts.models import User
from keys.actions import revoke_device
from keys.models import Device
from messaging.models import Membership, Message
from tests.inprocess import ApiClient, change_roster, create_group, frames_until_pong, next_of, seal

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"


async def connected(*sockets):
    for ws in sockets:
        ok, _ = await ws.connect()
        assert ok
    return sockets


async def closed_with(ws, code, timeout=1.0):
    """The socket is closed by the server with `code` within `timeout` seconds."""
    while True:
        output = await asyncio.wait_for(ws.output_queue.get(), timeout)
        if output["type"] == "websocket.close":
            assert output.get("code") == code
            return


async def test_anonymous_gets_4401(trio):
    alice = trio[0]
    ws = alice.socket()
    ws.scope["headers"] = [h for h in ws.scope["headers"] if h[0] != b"cookie"]
    assert (await ws.connect())[0]
    await closed_with(ws, 4401)


@pytest.mark.parametrize("which", ["other_users", "missing", "garbage", "revoked", "deactivated"])
async def test_forbidden_device_or_account_gets_4403(trio, which):
    alice, bob, _, _ = trio
    device_id = alice.device_id
    if which == "other_users":
        device_id = bob.device_id
    elif which == "revoked":
        await sync_to_async(revoke_device)(await Device.objects.aget(pk=alice.device_id))
    elif which == "deactivated":
        await User.objects.filter(pk=alice.user_id).aupdate(is_active=False)
    ws = alice.socket(device_id)
    if which in ("missing", "garbage"):
        ws.scope["query_string"] = b"" if which == "missing" else b"device=1;drop"
    assert (await ws.connect())[0]
    await closed_with(ws, 4403)


SITE = b"127.0.0.1:8000"  # the site as the browser reached it: http://127.0.0.1:8000


def socket_at(user, host: bytes, origin: bytes, *extra: tuple[bytes, bytes]):
    """A socket of `user` whose handshake carries this Host, Origin and extra headers."""
    ws = user.socket()
    kept = [h for h in ws.scope["headers"] if h[0] not in (b"host", b"origin")]
    ws.scope["headers"] = [*kept, (b"host", host), (b"origin", origin), *extra]
    return ws


FOREIGN_ORIGINS = [
    b"https://evil.example",
    b"http://localhost:9999",  # another host and port (the review's attack)
    b"https://127.0.0.1",  # another scheme and port (the review's attack)
    b"http://127.0.0.1",  # the default port, not the site's
    b"http://127.0.0.1:8001",
    b"https://127.0.0.1:8000",  # the right host and port over another scheme
    b"null",
]


async def test_foreign_origin_is_refused_at_handshake(trio):
    for origin in FOREIGN_ORIGINS:
        ws = socket_at(trio[0], SITE, origin)
        connected_ok, _ = await ws.connect()
        assert not connected_ok, origin


async def test_own_origin_with_port_and_trusted_origins_are_accepted(trio, settings):
    alice = trio[0]
    ws = socket_at(alice, SITE, b"http://127.0.0.1:8000")
    assert (await ws.connect())[0]
    await ws.disconnect()
    # Behind a TLS proxy the scheme comes from the header Django trusts.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = (b"x-forwarded-proto", b"https")
    ws = socket_at(alice, b"chat.example", b"https://chat.example", proxied)
    settings.ALLOWED_HOSTS = ["chat.example"]
    assert (await ws.connect())[0]
    await ws.disconnect()
    assert not (await socket_at(alice, b"chat.example", b"http://chat.example", proxied).connect())[
        0
    ]
    assert not (await socket_at(alice, b"chat.example", b"https://chat.example").connect())[0]
    # A Host outside ALLOWED_HOSTS is refused even when the Origin repeats it.
    assert not (await socket_at(alice, b"evil.example", b"http://evil.example").connect())[0]
    # CSRF_TRUSTED_ORIGINS: exactly, or a subdomain wildcard.
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example:8443", "https://*.chat.example"]
    for trusted in (b"https://app.example:8443", b"https://eu.chat.example"):
        ws = socket_at(alice, b"chat.example", trusted)
        assert (await ws.connect())[0]
        await ws.disconnect()
    for untrusted in (
        b"http://app.example:8443",
        b"https://app.example",
        b"http://eu.chat.example",
    ):
        assert not (await socket_at(alice, b"chat.example", untrusted).connect())[0]


@pytest.mark.parametrize(
    "text, code",
    [
        ("{oops", "bad_request"),
        ("[1, 2]", "bad_request"),
        ('{"type": 5}', "bad_request"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "typing", "conversation": "1"}', "bad_request"),
        ('{"type": "typing", "conversation": true}', "bad_request"),
        ('{"type": "read", "conversation": 1, "up_to": -1}', "bad_request"),
        ('{"type": "read", "conversation": 1, "up_to": 1e400}', "bad_request"),
        ('{"type": "read", "conversation": 1, "up_to": 99999999999999999999999}', "bad_request"),
        ('{"type": "sync", "cursors": {"abc": 1}}', "bad_request"),
        ('{"type": "sync", "cursors": [1]}', "bad_request"),
        ('{"type": "ping", "type": "send"}', "bad_request"),
        ("[" * 100_000 + "]" * 100_000, "bad_request"),
        ('{"type": "ping", "pad": "' + "x" * 300_000 + '"}', "too_large"),
        ('{"type": "typing", "conversation": 424242}', "not_found"),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else value,
)
async def test_bad_frames_get_error_and_socket_stays_open(trio, text, code):
    (ws,) = await connected(trio[0].socket())
    await ws.send_to(text_data=text)
    error = await next_of(ws, "error")
    assert error["code"] == code and error["detail"]
    await ws.send_to(bytes_data=b"\x00\x01")
    assert (await next_of(ws, "error"))["code"] == "bad_request"
    await ws.send_json_to({"type": "ping", "extra": "ignored"})
    assert await next_of(ws, "pong") == {"type": "pong"}
    assert await Message.objects.acount() == 0
    await ws.disconnect()


async def test_typing_reaches_other_members_only(trio):
    alice, bob, carol, direct = trio
    a_ws, b_ws, c_ws = await connected(alice.socket(), bob.socket(), carol.socket())
    await a_ws.send_json_to({"type": "typing", "conversation": direct["id"]})
    typing = await next_of(b_ws, "typing")
    assert typing == {
        "type": "typing",
        "conversation": direct["id"],
        "user": "alice",
        "user_id": alice.user_id,
    }
    for ws in (a_ws, c_ws):
        assert "typing" not in [frame["type"] for frame in await frames_until_pong(ws)]
    await c_ws.send_json_to({"type": "typing", "conversation": direct["id"]})
    assert (await next_of(c_ws, "error"))["code"] == "not_member"
    for ws in (a_ws, b_ws, c_ws):
        await ws.disconnect()


async def send_over(ws, user, conversation, text):
    msg_id, envelope = await sync_to_async(seal)(user, conversation, text)
    await ws.send_json_to(
        {
            "type": "send",
            "conversation": conversation["id"],
            "client_msg_id": msg_id,
            "envelope": envelope,
        }
    )
    return await next_of(ws, "ack")


async def test_read_mark_is_stored_and_told_to_every_member(trio):
    alice, bob, _, direct = trio
    a_ws, b_ws = await connected(alice.socket(), bob.socket())
    for text in ("one", "two", "three"):
        await send_over(a_ws, alice, direct, text)
    await b_ws.send_json_to({"type": "read", "conversation": direct["id"], "up_to": 99})
    expected = {
        "type": "read",
        "conversation": direct["id"],
        "user": "bob",
        "user_id": bob.user_id,
        "up_to": 3,
    }
    assert await next_of(a_ws, "read") == expected
    assert await next_of(b_ws, "read") == expected
    membership = await Membership.objects.aget(user_id=bob.user_id, conversation_id=direct["id"])
    assert membership.read_up_to == 3
    await b_ws.send_json_to(
        {"type": "read", "conversation": direct["id"], "up_to": 1}
    )  # never goes back
    await frames_until_pong(b_ws)  # bob's read was handled
    assert await frames_until_pong(a_ws) == []
    assert (await Membership.objects.aget(pk=membership.pk)).read_up_to == 3
    await a_ws.disconnect()
    await b_ws.disconnect()


async def test_presence_on_connect_first_open_and_last_close(trio):
    alice, bob, carol, _ = trio
    (a_ws,) = await connected(alice.socket())
    b_ws, b2_ws = bob.socket(), bob.socket()
    await connected(b_ws)
    assert await next_of(a_ws, "presence") == {
        "type": "presence",
        "user": "bob",
        "user_id": bob.user_id,
        "online": True,
    }
    assert (await next_of(b_ws, "presence"))["user"] == "alice"  # who is online, told on connect
    await connected(b2_ws)  # a second connection is not news
    (c_ws,) = await connected(carol.socket())  # carol shares nothing with alice
    await frames_until_pong(b2_ws)  # their connects (and any presence fan-out) are done
    await frames_until_pong(c_ws)
    assert await frames_until_pong(a_ws) == []
    await b_ws.disconnect()  # returns once the consumer has finished
    assert await frames_until_pong(a_ws) == []
    await b2_ws.disconnect()
    assert await next_of(a_ws, "presence") == {
        "type": "presence",
        "user": "bob",
        "user_id": bob.user_id,
        "online": False,
    }
    await a_ws.disconnect()
    await c_ws.disconnect()


async def test_sync_sends_exactly_the_missing_messages_in_order(trio):
    alice, bob, carol, direct = trio
    (a_ws,) = await connected(alice.socket())
    for i in range(5):
        await send_over(a_ws, alice, direct, f"before {i}")
    for i in range(20):  # bob is offline
        await send_over(a_ws, alice, direct, f"while away {i}")
    (b_ws,) = await connected(bob.socket())
    other = await sync_to_async(carol.api.post)("/api/conversations/", {"members": ["alice"]})
    foreign = other.json_body["conversation"]["id"]
    cursors = {str(direct["id"]): 5, str(foreign): 0}
    await b_ws.send_json_to({"type": "sync", "cursors": cursors})
    seqs, errors = [], []
    while True:
        frame = await b_ws.receive_json_from(timeout=5)
        if frame["type"] == "synced":
            break
        if frame["type"] == "message":
            seqs.append(frame["message"]["seq"])
        if frame["type"] == "error":
            errors.append(frame)
    assert seqs == list(range(6, 26))
    assert [(e["code"], e["conversation"]) for e in errors] == [("not_member", foreign)]
    assert frame == {
        "type": "synced",
        "cursors": {str(direct["id"]): 25},
        "has_more": {str(direct["id"]): False},
    }
    await b_ws.send_json_to({"type": "sync", "cursors": {str(direct["id"]): 40}})
    assert await next_of(b_ws, "synced") == {
        "type": "synced",
        "cursors": {str(direct["id"]): 40},
        "has_more": {str(direct["id"]): False},
    }
    await a_ws.disconnect()
    await b_ws.disconnect()


async def test_sync_pages_at_500(trio, settings):
    settings.SYNC_BATCH_LIMIT = 3
    alice, bob, _, direct = trio
    (a_ws,) = await connected(alice.socket())
    for i in range(5):
        await send_over(a_ws, alice, direct, f"m{i}")
    await a_ws.send_json_to({"type": "sync", "cursors": {str(direct["id"]): 0}})
    synced = await next_of(a_ws, "synced")
    assert synced == {
        "type": "synced",
        "cursors": {str(direct["id"]): 3},
        "has_more": {str(direct["id"]): True},
    }
    await a_ws.disconnect()


async def test_revoking_a_device_closes_its_socket_and_tells_members(trio, device_keys):
    alice, bob, _, _ = trio
    a_ws, b_ws = await connected(alice.socket(), bob.socket())
    await next_of(b_ws, "presence")
    device = await Device.objects.aget(pk=alice.device_id)
    await sync_to_async(revoke_device)(device)
    await closed_with(a_ws, 4403, timeout=1.0)
    assert await next_of(b_ws, "devices_changed", timeout=1) == {
        "type": "devices_changed",
        "user": "alice",
        "user_id": alice.user_id,
    }
    await sync_to_async(alice.register_device)(device_keys())
    assert (await next_of(b_ws, "devices_changed", timeout=1))["user"] == "alice"
    await b_ws.disconnect()


def second_session(user, password=PASSWORD):
    """The same user and device logged in from another browser (a session of its own)."""
    api = ApiClient()
    response = api.post("/api/session/", {"username": user.username, "password": password})
    assert response.status_code == 200
    return dataclasses.replace(user, api=api)


async def still_open(ws):
    await ws.send_to(text_data='{"type":"ping"}')
    assert await next_of(ws, "pong", timeout=2) == {"type": "pong"}


async def test_logout_closes_that_sessions_sockets_with_4401(trio):
    alice, bob, _, _ = trio
    other = await sync_to_async(second_session)(alice)
    a_ws, other_ws, b_ws = await connected(alice.socket(), other.socket(), bob.socket())
    assert (await sync_to_async(alice.api.delete)("/api/session/")).status_code == 204
    await closed_with(a_ws, 4401)
    # The old socket receives nothing more and cannot sync (the review's attack); the
    # same account's other session keeps its socket.
    await still_open(other_ws)
    await b_ws.disconnect()
    await other_ws.disconnect()


async def test_another_login_in_the_browser_flushes_the_session_and_closes_4401(trio):
    alice, _, _, _ = trio
    (a_ws,) = await connected(alice.socket())
    bob_login = {"username": "bob", "password": PASSWORD}
    assert (await sync_to_async(alice.api.post)("/api/session/", bob_login)).status_code == 200
    await closed_with(a_ws, 4401)


async def test_password_change_and_staff_reset_close_her_sockets_with_4401(trio):
    alice, bob, _, _ = trio
    other = await sync_to_async(second_session)(alice)
    a_ws, other_ws, b_ws = await connected(alice.socket(), other.socket(), bob.socket())
    staff = await sync_to_async(User.objects.create_superuser)("sam", password=PASSWORD)
    admin = Client()
    await sync_to_async(admin.force_login)(staff)
    reset = await sync_to_async(admin.post)(
        f"/admin/accounts/user/{alice.user_id}/password/",
        {"password1": "a new long passphrase", "password2": "a new long passphrase"},
    )
    assert reset.status_code == 302, reset.content
    await closed_with(a_ws, 4401)
    await closed_with(other_ws, 4401)
    await still_open(b_ws)
    # A change made in code (set_password + save, as `manage.py changepassword`) too.
    fresh = await sync_to_async(second_session)(alice, "a new long passphrase")
    (fresh_ws,) = await connected(fresh.socket())
    user = await User.objects.aget(pk=alice.user_id)
    user.set_password("another long passphrase")
    await user.asave()
    await closed_with(fresh_ws, 4401)
    await still_open(b_ws)
    await b_ws.disconnect()


async def test_deactivating_a_user_closes_her_sockets_within_a_second(trio):
    alice, bob, _, _ = trio
    (a_ws,) = await connected(alice.socket())
    user = await User.objects.aget(pk=alice.user_id)
    await sync_to_async(deactivate_user)(user)
    await closed_with(a_ws, 4403, timeout=1.0)


async def test_conversation_frames_on_every_roster_change(trio):
    alice, bob, carol, _ = trio
    a_ws, b_ws, c_ws = await connected(alice.socket(), bob.socket(), carol.socket())
    group = await sync_to_async(create_group)(alice, [bob], "g")
    for ws in (a_ws, b_ws):
        frame = await next_of(ws, "conversation")
        assert frame["conversation"]["id"] == group["id"]
        assert frame["conversation"]["roster_head"] == group["roster_head"]
    added = await sync_to_async(change_roster)(alice, group, "add", [carol])
    for ws in (a_ws, b_ws, c_ws):
        joined = await next_of(ws, "conversation")
        assert joined["conversation"]["roster_head"] == added["roster_head"]
        assert {m["username"] for m in joined["conversation"]["members"]} == {
            "alice",
            "bob",
            "carol",
        }
    retitled = await sync_to_async(change_roster)(bob, group, "title", title="new name")
    for ws in (a_ws, b_ws, c_ws):
        frame = await next_of(ws, "conversation")
        assert frame["conversation"]["title"] == "new name"
        assert frame["conversation"]["roster_head"] == retitled["roster_head"]
    await sync_to_async(change_roster)(alice, group, "remove", [carol])
    for ws in (a_ws, b_ws, c_ws):  # carol too, and her copy lists the group without her
        removed = await next_of(ws, "conversation")
        assert {m["username"] for m in removed["conversation"]["members"]} == {"alice", "bob"}
    await sync_to_async(change_roster)(bob, group, "leave", [bob])
    for ws in (a_ws, b_ws):
        left = await next_of(ws, "conversation")
        assert [m["username"] for m in left["conversation"]["members"]] == ["alice"]
    # carol is no longer told anything (the roster changes fan out before they return)
    assert "conversation" not in [f["type"] for f in await frames_until_pong(c_ws)]
    for ws in (a_ws, b_ws, c_ws):
        await ws.disconnect()


async def test_rate_limit_then_flood_close(trio):
    (ws,) = await connected(trio[0].socket())
    for _ in range(60):
        await ws.send_to(text_data='{"type": "ping"}')
    replies = [json.loads(await ws.receive_from()) for _ in range(60)]
    assert sum(r["type"] == "pong" for r in replies) >= 50
    assert any(r.get("code") == "rate_limited" for r in replies)
    for _ in range(300):
        await ws.send_to(text_data='{"type": "ping"}')
    await closed_with(ws, 4429, timeout=5)


async def test_new_co_members_learn_who_is_online_and_read_marks(trio):
    alice, bob, carol, direct = trio
    a_ws, c_ws = await connected(alice.socket(), carol.socket())
    group = await sync_to_async(create_group)(alice, [carol], "new friends")
    assert group["read_marks"] == {str(alice.user_id): 0, str(carol.user_id): 0}
    assert (await next_of(c_ws, "presence"))["user"] == "alice"
    assert (await next_of(a_ws, "presence"))["user"] == "carol"
    await a_ws.disconnect()
    await c_ws.disconnect()
