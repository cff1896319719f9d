"""Upgrade guard: fails loudly when a channels or channels_redis release changes a
behaviour the real-time path relies on (docs/protocol.md, "Real-time layer").

Each test names what to re-check when it fails. The layer tests run on a real Redis.
"""

import ast
import asyncio
import inspect
import textwrap

import pytest
import redis.asyncio as aioredis
from channels.consumer import AsyncConsumer, get_handler_name
from channels.db import aclose_old_connections  # noqa: F401  (its absence fails here)
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from channels.utils import await_many_dispatch

from messaging.consumers import ChatConsumer
from messaging.layer import ChatChannelLayer

# channels 4.3's AsyncConsumer.dispatch, which ChatConsumer.dispatch re-implements
# without the per-message `aclose_old_connections` (one thread hop per frame; our
# database calls keep their own connection, messaging/dbthread.py).
UPSTREAM_DISPATCH = '''
async def dispatch(self, message):
    """
    Works out what to do with a message.
    """
    handler = getattr(self, get_handler_name(message), None)
    if handler:
        await aclose_old_connections()
        await handler(message)
    else:
        raise ValueError("No handler for message type %s" % message["type"])
'''


def _shape(source: str) -> str:
    """The code's syntax tree without docstrings, so formatting and comments do not count."""
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def test_channels_consumer_dispatch_is_the_one_chat_consumer_reimplements():
    assert _shape(inspect.getsource(AsyncConsumer.dispatch)) == _shape(UPSTREAM_DISPATCH), (
        "channels changed AsyncConsumer.dispatch: re-check ChatConsumer.dispatch "
        "(messaging/consumers.py), which copies it minus aclose_old_connections, then "
        "update UPSTREAM_DISPATCH here"
    )


async def test_chat_consumer_dispatch_routes_like_channels():
    """Handler names as channels derives them; an unknown type raises, as upstream."""
    consumer = ChatConsumer()
    seen = []

    async def chat_frame(event):
        seen.append(event)

    consumer.chat_frame = chat_frame
    await consumer.dispatch({"type": "chat.frame", "text": "x"})
    assert seen == [{"type": "chat.frame", "text": "x"}]
    assert get_handler_name({"type": "chat.frame"}) == "chat_frame"
    with pytest.raises(ValueError, match="No handler"):
        await consumer.dispatch({"type": "chat.nothing"})
    with pytest.raises(ValueError):
        await consumer.dispatch({"type": "_private"})


async def test_a_consumer_ends_by_cancelling_its_channel_receive():
    """messaging.layer forgets a channel (its groups, its subscriptions) when the
    consumer's pending `receive` is cancelled: Channels has no "delete channel", and
    `await_many_dispatch` cancels the pending receives when the consumer stops."""
    cancelled = asyncio.Event()

    async def from_client():
        return {"type": "stop"}

    async def from_channel():
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def dispatch(message):
        raise StopConsumer

    with pytest.raises(StopConsumer):
        await await_many_dispatch([from_client, from_channel], dispatch)
    assert cancelled.is_set(), (
        "channels no longer cancels a stopped consumer's receive: messaging.layer would "
        "keep every closed socket's channel and subscriptions"
    )


class GroupConsumer(AsyncWebsocketConsumer):
    groups = ["guard.group"]


@pytest.mark.processes
@pytest.mark.django_db  # Channels' dispatch closes old database connections per event
async def test_a_closed_socket_leaves_nothing_subscribed(redis_server, settings):
    """End to end on a real Redis: a socket's channel and group subscriptions end with it."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "messaging.layer.ChatChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_server.url}], "prefix": "guard"},
        }
    }
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        communicator = WebsocketCommunicator(GroupConsumer.as_asgi(), "/ws/")
        assert (await communicator.connect())[0]
        subscribed = {c.decode() for c in await client.pubsub_channels("guard.*")}
        # its group, the broadcast topic of group_send_many, and its channel
        assert {"guard.group.guard.group", "guard.groups"} < subscribed and len(subscribed) == 3
        await communicator.disconnect()
        assert await client.pubsub_channels("guard.*") == []
    finally:
        await client.aclose()
        await get_channel_layer().flush()


def test_base_channel_layer_helpers_we_call():
    """messaging.layer builds on these BaseChannelLayer helpers."""
    layer = ChatChannelLayer(hosts=[{"address": "redis://127.0.0.1:1"}], capacity=7)
    assert layer.require_valid_group_name("user.1") and layer.require_valid_channel_name("a.b")
    with pytest.raises(TypeError):
        layer.require_valid_group_name("bad name")
    assert layer.get_capacity("chat.specific.x") == 7
    assert {"groups", "flush"} <= set(layer.extensions)
