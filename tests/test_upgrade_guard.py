"""Upgrade guard: fails loudly when a channels or channels_redis release changes a
behaviour the real-time path relies on (docs/protocol.md, "Real-time layer").

Each test names what to re-check when it fails. The layer tests run on a real Redis.
"""

import ast
import inspect
import textwrap

import pytest
from channels.consumer import AsyncConsumer, get_handler_name
from channels.db import aclose_old_connections  # noqa: F401  (its absence fails here)

from messaging.consumers import ChatConsumer

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
