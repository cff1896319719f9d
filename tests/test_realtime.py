"""Fan-out (messaging.realtime): sockets of this process get frames by a direct call,
sockets of other processes through the channel layer, each exactly once; on the
in-memory layer and on a real Redis."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from messaging import realtime
from tests.inprocess import seal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["memory", "redis"])
def layer_kind(request, settings):
    """The in-memory layer (the tests' default) or channels_redis's core layer on a real Redis."""
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_server").url
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": None}]},
            }
        }
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
    for ws in (a_ws, b_ws):  # exactly once each
        assert await ws.receive_nothing(timeout=0.3)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(elsewhere), 0.3)

    await a_ws.disconnect()
    await b_ws.disconnect()
    assert not realtime._local_sockets.get(asyncio.get_running_loop())
