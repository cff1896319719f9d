"""Fan-out (messaging.realtime): sockets of this process get frames by a direct call,
sockets of other processes through the channel layer, each exactly once; on the
in-memory layer and on a real Redis."""

import asyncio
import json

import pytest
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from messaging import realtime
from tests.inprocess import frames_until_pong, seal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_layer(settings, redis_server):
    """channels_redis's core layer on a real Redis, for this test."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_server.url, "socket_timeout": None}]},
        }
    }


@pytest.fixture(params=["memory", "redis"])
def layer_kind(request):
    """The in-memory layer (the tests' default) or channels_redis's core layer on a real Redis."""
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


async def test_local_sockets_directly_other_processes_through_the_layer(trio, layer_kind):
    alice, bob, _, direct = trio
    a_ws, b_ws = alice.socket(), bob.socket()
    for ws in (a_ws, b_ws):
        assert (await ws.connect())[0]
        await ws.send_json_to({"type": "ping"})  # answered once connect() has finished
        await frames_until(ws, "pong")
    layer = get_channel_layer()
    # A socket of bob's on "another process": in his group, not registered in this loop.
    elsewhere = await layer.new_channel()
    await layer.group_add(realtime.user_group(bob.user_id), elsewhere)
    local = realtime._local_sockets[asyncio.get_running_loop()]
    assert elsewhere not in local and len(local) >= 2

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
    assert (await frames_until(b_ws, "message"))[-1]["message"]["client_msg_id"] == client_msg_id
    event = await asyncio.wait_for(layer.receive(elsewhere), 5)
    assert event["type"] == "chat.frame"
    assert json.loads(event["text"])["message"]["client_msg_id"] == client_msg_id
    # Exactly once each. A duplicate would come through the channel layer, which a ping
    # does not overtake: no event marks its absence, so this waits a bounded 0.3 s.
    for ws in (a_ws, b_ws):
        assert await ws.receive_nothing(timeout=0.3)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(elsewhere), 0.3)

    await a_ws.disconnect()
    await b_ws.disconnect()
    assert not realtime._local_sockets.get(asyncio.get_running_loop())


async def test_copies_for_other_workers_go_to_their_inbox_and_come_back_in_process(
    trio, redis_layer
):
    """Redis: a socket of another worker gets one PUBLISH to that worker's inbox naming it;
    an inbox item for a socket here is handed to it in-process."""
    alice, bob, _, direct = trio
    a_ws, b_ws = alice.socket(), bob.socket()
    for ws in (a_ws, b_ws):
        assert (await ws.connect())[0]
        await ws.send_json_to({"type": "ping"})
        await frames_until(ws, "pong")
    layer = get_channel_layer()
    other_worker = "specific.0ther0worker"
    elsewhere = f"{other_worker}!1"
    await layer.group_add(realtime.user_group(bob.user_id), elsewhere)
    listener = aioredis.Redis.from_url(layer.hosts[0]["address"])
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(realtime.INBOX_PREFIX + other_worker)
    try:
        client_msg_id, envelope = await sync_to_async(seal)(alice, direct, "to both workers")
        frame = {"type": "send", "conversation": direct["id"], "client_msg_id": client_msg_id}
        await a_ws.send_json_to({**frame, "envelope": envelope})
        await frames_until(a_ws, "message")  # her ack and her own copy
        await frames_until(b_ws, "message")
        item = None
        for _ in range(50):
            item = await pubsub.get_message(timeout=0.1)
            if item is not None:
                break
        assert item is not None, "nothing published to the other worker's inbox"
        header, _, text = item["data"].partition(b"\n")
        assert header.decode() == elsewhere  # only the other worker's socket is named
        assert json.loads(text)["message"]["client_msg_id"] == client_msg_id
        assert await pubsub.get_message(timeout=0.3) is None  # one copy per worker

        # An inbox item from "another worker" for bob's socket here reaches it in-process.
        b_channel = next(
            name
            for name, deliver in realtime._local_sockets[asyncio.get_running_loop()].items()
            if getattr(deliver, "__self__", None) is not None
            and deliver.__self__.user.pk == bob.user_id
        )
        inbox = realtime._inboxes[asyncio.get_running_loop()]
        text_in = json.dumps({"type": "typing", "conversation": direct["id"], "user": "x"})
        await listener.publish(inbox.name, f"{b_channel}\n{text_in}".encode())
        assert (await frames_until(b_ws, "typing"))[-1]["user"] == "x"
        assert await frames_until_pong(a_ws) == []  # not named, not delivered
    finally:
        await pubsub.aclose()
        await listener.aclose()
        await layer.group_discard(realtime.user_group(bob.user_id), elsewhere)
        await a_ws.disconnect()
        await b_ws.disconnect()
