"""Fan-out (messaging.realtime): every socket gets each frame once, through its channel,
whether it is in this process or another; on the in-memory layer and on the chat's
layer over a real Redis (a second layer instance stands for another process)."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from messaging import realtime
from messaging.layer import ChatChannelLayer
from tests.inprocess import seal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_layer(settings, redis_server):
    """The chat's channel layer on a real Redis, for this test."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "messaging.layer.ChatChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_server.url}], "prefix": "rt"},
        }
    }
    return redis_server


@pytest.fixture(params=["memory", "redis"])
def layer_kind(request):
    """The in-memory layer (the tests' default) or the chat's layer on a real Redis."""
    if request.param == "redis":
        request.getfixturevalue("redis_layer")
    return request.param


async def frames_until(ws, kind, timeout=5):
    """Every frame up to and including the first of type `kind`."""
    seen = []
    while True:
        frame = await ws.receive_json_from(timeout=timeout)
        seen.append(frame)
        if frame["type"] == kind:
            return seen


async def test_sockets_here_and_in_another_process_get_each_frame_once(trio, layer_kind, request):
    alice, bob, _, direct = trio
    a_ws, b_ws = alice.socket(), bob.socket()
    for ws in (a_ws, b_ws):
        assert (await ws.connect())[0]
        await ws.send_json_to({"type": "ping"})  # answered once connect() has finished
        await frames_until(ws, "pong")
    if layer_kind == "redis":  # a socket of bob's on another process: another layer
        server = request.getfixturevalue("redis_server")
        other = ChatChannelLayer(hosts=[{"address": server.url}], prefix="rt")
    else:  # in memory there is one process: another channel of the same layer
        other = get_channel_layer()
    elsewhere = await other.new_channel()
    await other.group_add(realtime.user_group(bob.user_id), elsewhere)
    try:
        client_msg_id, envelope = await sync_to_async(seal)(alice, direct, "hello")
        await a_ws.send_json_to(
            {
                "type": "send",
                "conversation": direct["id"],
                "client_msg_id": client_msg_id,
                "envelope": envelope,
            }
        )
        mine = [f for f in await frames_until(a_ws, "message") if f["type"] in ("ack", "message")]
        assert [f["type"] for f in mine] == ["ack", "message"]  # the ack before her own copy
        got = (await frames_until(b_ws, "message"))[-1]["message"]
        assert got["client_msg_id"] == client_msg_id
        event = await asyncio.wait_for(other.receive(elsewhere), 5)
        assert event["type"] == "chat.frame"
        assert json.loads(event["text"])["message"]["client_msg_id"] == client_msg_id
        # Exactly once each: a later frame to the same sockets comes next (one channel,
        # one queue, in order), so a duplicate would show before it.
        await realtime.send_to_users([alice.user_id, bob.user_id], {"type": "marker"})
        for ws in (a_ws, b_ws):
            assert (await ws.receive_json_from(timeout=5)) == {"type": "marker"}
        assert json.loads((await asyncio.wait_for(other.receive(elsewhere), 5))["text"]) == {
            "type": "marker"
        }
    finally:
        await other.group_discard(realtime.user_group(bob.user_id), elsewhere)
        if layer_kind == "redis":
            await other.flush()
        await a_ws.disconnect()
        await b_ws.disconnect()


async def test_frames_to_one_socket_keep_their_order(trio, redis_layer):
    """Frames and a close to one socket arrive in the order they were sent: one way in."""
    alice, bob, _, direct = trio
    b_ws = bob.socket()
    assert (await b_ws.connect())[0]
    await b_ws.send_json_to({"type": "ping"})
    await frames_until(b_ws, "pong")
    for i in range(30):
        await realtime.send_to_users([bob.user_id], {"type": "marker", "i": i})
    await realtime.close_user_sockets(bob.user_id)
    got = [(await b_ws.receive_json_from(timeout=5))["i"] for _ in range(30)]
    assert got == list(range(30))
    assert (await b_ws.receive_output(timeout=5))["type"] == "websocket.close"


async def test_a_frame_to_many_users_reaches_each_once(layer_kind, request):
    """`send_to_users` to 12 users: each user's socket gets the frame once; on the chat's
    layer it is one publish to the broadcast topic (`group_send_many`), on the in-memory
    layer one `group_send` per user."""
    import redis.asyncio as aioredis

    users = list(range(9001, 9013))
    watcher = watch = None
    if layer_kind == "redis":
        server = request.getfixturevalue("redis_server")
        other = ChatChannelLayer(hosts=[{"address": server.url}], prefix="rt")
        watcher = aioredis.Redis.from_url(server.url)
        watch = watcher.pubsub()
        await watch.psubscribe("rt.group*")
        assert (await watch.get_message(timeout=5))["type"] == "psubscribe"
    else:
        other = get_channel_layer()
    channels = {}
    try:
        for uid in users:
            channels[uid] = await other.new_channel()
            await other.group_add(realtime.user_group(uid), channels[uid])
        await realtime.send_to_users(users, {"type": "marker", "n": 1})
        await realtime.send_to_users(users[:1], {"type": "marker", "n": 2})
        for uid in users:
            event = await asyncio.wait_for(other.receive(channels[uid]), 5)
            assert json.loads(event["text"]) == {"type": "marker", "n": 1}
        event = await asyncio.wait_for(other.receive(channels[users[0]]), 5)
        assert json.loads(event["text"])["n"] == 2  # next: the first came once
        if watch is not None:
            topics = []
            while (item := await watch.get_message(timeout=0.5)) is not None:
                topics.append(item["channel"].decode())
            assert topics == ["rt.groups", f"rt.group.user.{users[0]}"]
    finally:
        for uid, channel in channels.items():
            await other.group_discard(realtime.user_group(uid), channel)
        if watch is not None:
            await watch.aclose()
            await watcher.aclose()
            await other.flush()
