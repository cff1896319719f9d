"""The asyncio client library against a live daphne + Redis: stale devices, checks on
incoming messages, replays, and the README's bot."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from chatclient import keystore, protocol
from chatclient.client import ChatClient, connect
from chatclient.display import message_line
from chatclient.errors import ChatApiError, SocketClosed
from chatclient.events import IncomingMessage, Status
from chatclient.session import ChatSession
from chatclient.ws import ChatSocket

pytestmark = pytest.mark.processes


async def new_device(session: ChatSession, user: dict, keys: protocol.DeviceKeys) -> dict:
    return await session.register_device(
        "test",
        protocol.b64encode(keys.enc_spki),
        protocol.b64encode(keys.sig_spki),
        protocol.sign_device_proof(keys, user["id"]),
    )


async def new_client(base_url: str, name: str, keys: protocol.DeviceKeys) -> ChatClient:
    session = ChatSession(base_url)
    user = await session.register(name, f"{name}-password-9x!")
    device = await new_device(session, user, keys)
    return ChatClient(session, keys, user_id=user["id"], username=name, device_id=device["id"])


@pytest.fixture
def server(live_stack):
    return live_stack()


async def test_session_errors_and_csrf(server):
    session = ChatSession(server.base_url)
    assert await session.get_session() is None
    assert session.csrf_token
    with pytest.raises(ChatApiError) as caught:
        await session.conversations()
    assert (caught.value.status, caught.value.code) == (401, "not_authenticated")
    with pytest.raises(ChatApiError) as caught:
        await session.login("nobody", "x")
    assert caught.value.code == "invalid_credentials"
    user = await session.register("carol", "carol-password-9x!")
    restored = ChatSession.from_state(json.loads(json.dumps(session.export_state())))
    assert (await restored.get_session())["id"] == user["id"]
    with pytest.raises(ChatApiError) as caught:
        await restored.create_conversation([])
    assert caught.value.code == "bad_request" and "fields" in caught.value.extra


async def test_websocket_needs_login_and_own_device(server, device_keys):
    alice = await new_client(server.base_url, "alice", device_keys())
    bob = await new_client(server.base_url, "bob", device_keys())
    async with await ChatSocket.open(alice.session, alice.device_id) as sock:
        await sock.send_frame({"type": "ping"})
        assert (await sock.recv_frame(timeout=10)) == {"type": "pong"}
    async with await ChatSocket.open(alice.session, bob.device_id) as sock:
        with pytest.raises(SocketClosed) as caught:
            await sock.recv_frame(timeout=10)
    assert caught.value.code == 4403 and caught.value.fatal
    anonymous = ChatSession(server.base_url)
    async with await ChatSocket.open(anonymous, 1) as sock:
        with pytest.raises(SocketClosed) as caught:
            await sock.recv_frame(timeout=10)
    assert caught.value.code == 4401


async def test_stale_devices_are_refetched_and_the_change_reported(server, device_keys):
    alice = await new_client(server.base_url, "alice", device_keys())
    bob = await new_client(server.base_url, "bob", device_keys())
    first = await alice.send_text("bob", "one")
    assert alice.pop_notices() == []  # first sight of bob's devices: nothing to compare
    # bob adds a device; alice's cached device list is now stale.
    bob_user = await bob.session.get_session()
    second_keys = device_keys()
    await new_device(bob.session, bob_user, second_keys)
    codes = []
    original = alice.session.send_message

    async def recording(*args, **kwargs):
        try:
            return await original(*args, **kwargs)
        except ChatApiError as error:
            codes.append(error.code)
            raise

    alice.session.send_message = recording
    second = await alice.send_text(first["conversation"], "two")
    assert codes == ["stale_devices"]
    assert second["seq"] == 2 and second["envelope"]["keys"].keys() >= {second_keys.enc_kid}
    (change,) = alice.pop_notices()
    assert change.username == "bob" and change.added == (second_keys.sig_kid,)
    assert change.removed == ()
    # The new device opens the new message.
    new_bob = ChatClient(bob.session, second_keys, user_id=bob.user_id, username="bob", device_id=0)
    opened = await new_bob.open(second)
    assert opened.verified and opened.text == "two"


async def test_incoming_checks_tampering_replay_and_revocation(server, device_keys):
    alice = await new_client(server.base_url, "alice", device_keys())
    bob = await new_client(server.base_url, "bob", device_keys())
    sent = await alice.send_text("bob", "genuine")
    ok = await bob.open(sent)
    assert ok.verified and ok.text == "genuine" and not ok.own

    envelope = dict(sent["envelope"])
    ct = protocol.b64decode(envelope["ct"])
    envelope["ct"] = protocol.b64encode(bytes([ct[0] ^ 1]) + ct[1:])
    tampered = await bob.open({**sent, "id": 500, "envelope": envelope})
    assert tampered.status == "unverified" and tampered.text is None
    assert "genuine" not in message_line(tampered)
    assert "could not be decrypted or verified" in message_line(tampered)

    wrong_sender = await bob.open({**sent, "id": 501, "sender_id": bob.user_id})
    assert wrong_sender.status == "unverified" and "another user" in wrong_sender.error

    replay = await bob.open({**sent, "id": 502, "seq": 9})
    assert replay.status == "replay" and replay.replay_of == sent["id"] and replay.text is None
    assert (await bob.open(sent)).verified  # the same id again is not a replay

    # alice revokes her device: old messages still verify, "newer" ones do not.
    await alice.session.revoke_device(alice.device_id)
    fresh = ChatClient(bob.session, bob.keys, user_id=bob.user_id, username="bob", device_id=0)
    assert (await fresh.open(sent)).verified
    later = await fresh.open({**sent, "id": 503, "created": "2999-01-01T00:00:00.000Z"})
    assert later.status == "unverified" and "not active" in later.error


async def test_listen_orders_and_syncs_and_the_readme_bot(server, device_keys, tmp_path):
    alice = await new_client(server.base_url, "alice", device_keys())
    bot_keys = device_keys()
    bot_session = ChatSession(server.base_url)
    bot_user = await bot_session.register("echobot", "echobot-password-9x!")
    bot_device = await new_device(bot_session, bot_user, bot_keys)
    record = keystore.lock_keystore(
        bot_keys,
        user_id=bot_user["id"],
        username="echobot",
        device_id=bot_device["id"],
        passphrase="bot passphrase",
    )
    key_file = tmp_path / "echobot-key.json"
    key_file.write_text(json.dumps(record))

    async def echo_bot():  # the docs/client.md example
        client = await connect(
            server.base_url,
            username="echobot",
            password="echobot-password-9x!",
            key_file=key_file,
            passphrase="bot passphrase",
        )
        async for message in client.messages():
            if message.text is not None:
                await client.send_text(message.conversation, f"echo: {message.text}")

    bot = asyncio.create_task(echo_bot())
    received: list[IncomingMessage] = []
    statuses: list[Status] = []

    async def alice_listens():
        async for event in alice.events():
            if isinstance(event, IncomingMessage):
                received.append(event)
            elif isinstance(event, Status):
                statuses.append(event)

    listener = asyncio.create_task(alice_listens())
    try:
        deadline = time.monotonic() + 30
        while not statuses and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # let the bot connect too
        for text in ("ping", "pong"):
            await alice.send_text("echobot", text)
        while len([m for m in received if not m.own]) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        listener.cancel()
        bot.cancel()
        await asyncio.gather(listener, bot, return_exceptions=True)
    assert [m.text for m in received if not m.own] == ["echo: ping", "echo: pong"]
    assert [m.text for m in received if m.own] == ["ping", "pong"]
    assert [m.seq for m in received] == sorted(m.seq for m in received)
    assert all(m.verified for m in received)


async def test_send_on_socket_acks_and_reseals_on_stale_devices(server, device_keys):
    alice = await new_client(server.base_url, "alice", device_keys())
    bob = await new_client(server.base_url, "bob", device_keys())
    conversation = await alice.conversation("bob")
    async with await ChatSocket.open(alice.session, alice.device_id) as sock:
        ack, _ = await alice.send_on_socket(sock, conversation, protocol.text_message("one"))
        assert ack["type"] == "ack" and ack["seq"] == 1
        await new_device(bob.session, await bob.session.get_session(), device_keys())
        ack, others = await alice.send_on_socket(sock, "bob", protocol.text_message("two"))
        assert ack["seq"] == 2
        assert not [f for f in others if f.get("type") == "error"]  # the stale error was ours
        (change,) = alice.pop_notices()
        assert change.username == "bob" and len(change.added) == 1
        again, _ = await alice.send_on_socket(
            sock, "bob", protocol.text_message("ignored"), client_msg_id=ack["client_msg_id"]
        )
        assert again["id"] == ack["id"]  # idempotent by client_msg_id
    history, _ = await bob.history(conversation["id"])
    assert [m.text for m in history] == ["one", "two"]
