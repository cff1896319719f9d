"""Fan-out: per-user, per-device and per-session groups on the channel layer.

Every WebSocket joins `user.<id>`, `device.<id>` and `session.<digest>` of its login
session. `send_to_users` serializes a frame once and sends it as a `chat.frame` event
to each recipient's user group (`send_to_groups`: one `group_send_many` where the layer
declares that extension); `close_*` send a `chat.close` event (a close code) to a
group. Nothing here knows how the layer moves events: that is the layer's job
(`messaging.layer.ChatChannelLayer` on Redis, Channels' in-memory layer in one process),
so a socket gets every event one way, through its channel, in order.
"""

import asyncio
import hashlib
import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from .wire import dumps_frame

logger = logging.getLogger(__name__)

CLOSE_NOT_LOGGED_IN = 4401
CLOSE_FORBIDDEN = 4403


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def device_group(device_id: int) -> str:
    return f"device.{device_id}"


def session_group(session_key: str) -> str:
    """The group of the sockets opened with this session (a digest: no session keys in
    the channel layer)."""
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def encode(frame: dict) -> str:
    return dumps_frame(frame)


async def send_to_groups(groups: list[str], event: dict) -> None:
    """`group_send` one event to each of these groups: through the layer's
    `group_send_many` when it lists that extension (`messaging.layer`: one publish for
    many groups), else one `group_send` per group, all started at once. Raises what the
    layer raised, after every group was tried."""
    if not groups:
        return
    layer = get_channel_layer()
    if "group_send_many" in layer.extensions:
        await layer.group_send_many(groups, event)
        return
    results = await asyncio.gather(
        *(layer.group_send(group, event) for group in groups), return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise failed[0]


async def send_to_users(user_ids: Iterable[int], frame: dict | str) -> None:
    """Deliver one frame (dict, or text already encoded) to every connection of these
    users: a `chat.frame` event to each user group (`send_to_groups`)."""
    text = frame if isinstance(frame, str) else encode(frame)
    groups = sorted({user_group(uid) for uid in user_ids})
    await send_to_groups(groups, {"type": "chat.frame", "text": text})


async def close_user_sockets(user_id: int, code: int = CLOSE_FORBIDDEN) -> None:
    await get_channel_layer().group_send(user_group(user_id), {"type": "chat.close", "code": code})


async def close_device_sockets(device_id: int, code: int = CLOSE_FORBIDDEN) -> None:
    await get_channel_layer().group_send(
        device_group(device_id), {"type": "chat.close", "code": code}
    )


async def close_session_sockets(session_key: str, code: int = CLOSE_NOT_LOGGED_IN) -> None:
    await get_channel_layer().group_send(
        session_group(session_key), {"type": "chat.close", "code": code}
    )


send_to_users_sync = async_to_sync(send_to_users)
close_session_sockets_sync = async_to_sync(close_session_sockets)
close_user_sockets_sync = async_to_sync(close_user_sockets)
close_device_sockets_sync = async_to_sync(close_device_sockets)


def warn_if_single_process() -> None:
    """Say at start-up when the channel layer cannot fan out beyond this process."""
    if settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer"):
        logger.warning(
            "REDIS_URL is unset: the in-memory channel layer fans out inside this one process "
            "only. Run a single server process, or set REDIS_URL for several."
        )
