"""Fan-out through the channel layer: per-user and per-device groups.

Every WebSocket joins `user.<id>` and `device.<id>`. A frame is serialized once and sent
to each recipient user's group as a ``chat.frame`` event carrying the text; a
``chat.close`` event closes sockets with a code.
"""

import asyncio
import json
import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def device_group(device_id: int) -> str:
    return f"device.{device_id}"


def encode(frame: dict) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


async def send_to_users(user_ids: Iterable[int], frame: dict | str) -> None:
    """Deliver one frame (dict, or text already encoded) to every connection of these users."""
    text = frame if isinstance(frame, str) else encode(frame)
    event = {"type": "chat.frame", "text": text}
    layer = get_channel_layer()
    await asyncio.gather(*(layer.group_send(user_group(uid), event) for uid in set(user_ids)))


async def close_user_sockets(user_id: int, code: int = CLOSE_FORBIDDEN) -> None:
    await get_channel_layer().group_send(user_group(user_id), {"type": "chat.close", "code": code})


async def close_device_sockets(device_id: int, code: int = CLOSE_FORBIDDEN) -> None:
    await get_channel_layer().group_send(
        device_group(device_id), {"type": "chat.close", "code": code}
    )


send_to_users_sync = async_to_sync(send_to_users)
close_user_sockets_sync = async_to_sync(close_user_sockets)
close_device_sockets_sync = async_to_sync(close_device_sockets)


def warn_if_single_process() -> None:
    """Say at start-up when the channel layer cannot fan out beyond this process."""
    if settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer"):
        logger.warning(
            "REDIS_URL is unset: the in-memory channel layer fans out inside this one process "
            "only. Run a single server process, or set REDIS_URL for several."
        )
