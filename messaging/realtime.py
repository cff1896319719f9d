"""Fan-out: per-user and per-device groups, delivered in-process where the socket is here.

Every WebSocket joins `user.<id>` and `device.<id>` and registers itself as a local socket
of its event loop (`add_local_socket`); it also joins `session.<digest>` of its login session. `send_to_users` serializes a frame once, reads the
channels of the recipients' user groups, hands the frame straight to the sockets of this
event loop, and sends one copy per other process: on Redis to that process's inbox
(see "worker inboxes" below), on the in-memory layer through the layer. A ``chat.close``
event closes sockets with a code; it always goes through the layer.
"""

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)

CLOSE_NOT_LOGGED_IN = 4401
CLOSE_FORBIDDEN = 4403

Deliver = Callable[[dict], Awaitable[None]]

# event loop -> {channel name: the consumer's handler of `chat.frame` events}
_local_sockets: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Deliver]]" = (
    weakref.WeakKeyDictionary()
)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def device_group(device_id: int) -> str:
    return f"device.{device_id}"


def session_group(session_key: str) -> str:
    """The group of the sockets opened with this session (a digest: no session keys in
    the channel layer)."""
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def encode(frame: dict) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def add_local_socket(channel_name: str, deliver: Deliver) -> None:
    """Deliver this loop's `chat.frame` events for `channel_name` by calling `deliver`."""
    _local_sockets.setdefault(asyncio.get_running_loop(), {})[channel_name] = deliver


def discard_local_socket(channel_name: str) -> None:
    """Stop delivering in-process to `channel_name` (idempotent)."""
    sockets = _local_sockets.get(asyncio.get_running_loop())
    if sockets is not None:
        sockets.pop(channel_name, None)


async def send_to_users(user_ids: Iterable[int], frame: dict | str) -> None:
    """Deliver one frame (dict, or text already encoded) to every connection of these users.

    Sockets of this event loop get it by a direct call; sockets of other processes get
    one copy per process: its inbox on Redis (`_redis_send_remote`), the layer otherwise.
    """
    text = frame if isinstance(frame, str) else encode(frame)
    event = {"type": "chat.frame", "text": text}
    layer = get_channel_layer()
    groups = [user_group(uid) for uid in set(user_ids)]
    if not groups:
        return
    if _is_redis_core_layer(layer):
        channels = await _redis_group_channels(layer, groups)
    elif isinstance(layer, InMemoryChannelLayer):
        channels = {name for group in groups for name in layer.groups.get(group, ())}
    else:  # another layer: its own group_send, no in-process shortcut
        await asyncio.gather(*(layer.group_send(group, event) for group in groups))
        return
    local = _local_sockets.get(asyncio.get_running_loop(), {})
    here = [local[name] for name in channels if name in local]
    remote = [name for name in channels if name not in local]
    try:  # other processes first: one layer call, then they work in parallel with us
        if remote and isinstance(layer, InMemoryChannelLayer):
            for name in remote:
                with contextlib.suppress(ChannelFull):  # as InMemoryChannelLayer.group_send
                    await layer.send(name, event)
        elif remote:
            await _redis_send_remote(layer, remote, event, groups)
    finally:  # this process's sockets get their copy even if the layer failed
        await _deliver_each(here, event)


async def _deliver_each(delivers: Iterable[Deliver], event: dict) -> None:
    """`event` to each socket here; one broken socket does not cost the others their copy."""
    for deliver in delivers:
        try:
            await deliver(event)
        except Exception:
            logger.exception("in-process delivery failed")


def _is_redis_core_layer(layer) -> bool:
    try:
        from channels_redis.core import RedisChannelLayer
    except ImportError:  # pragma: no cover - channels_redis is a dependency
        return False
    return type(layer) is RedisChannelLayer


async def _redis_group_channels(layer, groups: list[str]) -> set[str]:
    """The channels of these groups on channels_redis's core layer (4.x), expired ones
    dropped as `group_send` does: one pipeline per Redis connection."""
    for group in groups:
        assert layer.require_valid_group_name(group), "Group name not valid"
    keys_by_connection = defaultdict(list)
    for group in groups:
        keys_by_connection[layer.consistent_hash(group)].append(layer._group_key(group))
    channel_names: set[str] = set()
    now = int(time.time())
    for index, keys in keys_by_connection.items():
        pipe = layer.connection(index).pipeline()
        for key in keys:
            pipe.zremrangebyscore(key, min=0, max=now - layer.group_expiry)
            pipe.zrange(key, 0, -1)
        replies = await pipe.execute()
        for names in replies[1::2]:
            channel_names.update(name.decode("utf8") for name in names)
    return channel_names


async def _redis_send_to_channels(layer, channels: list[str], message: dict, groups) -> None:
    """One message to several channels on channels_redis's core layer (4.x).

    As `RedisChannelLayer.group_send` does, per Redis connection one pipeline trims the
    channels' expired messages and one Lua call adds the message under each channel key
    (each process's channels share one key; the copy lists its channels), with the same
    capacity rule and the same "over capacity" log line. For a 20-member group: 3 round
    trips and one copy per process instead of 80 round trips and 20 copies.
    """
    from channels_redis.core import logger as layer_logger

    by_connection, key_to_message, key_to_capacity = layer._map_channel_keys_to_connection(
        channels, message
    )
    for index, channel_keys in by_connection.items():
        connection = layer.connection(index)
        pipe = connection.pipeline()
        for key in channel_keys:
            pipe.zremrangebyscore(key, min=0, max=int(time.time()) - int(layer.expiry))
        await pipe.execute()
        args = [key_to_message[key] for key in channel_keys]
        args += [key_to_capacity[key] for key in channel_keys]
        args += [time.time(), layer.expiry]
        over = await connection.eval(_GROUP_SEND_LUA, len(channel_keys), *channel_keys, *args)
        if over > 0:
            layer_logger.info(
                "%s of %s channels over capacity in group %s",
                over,
                len(channels),
                ",".join(groups[:5]),
            )


# --- worker inboxes: chat frames between processes on Redis pub/sub --------------------
#
# A copy for sockets of another daphne goes to that process's inbox, a Redis pub/sub
# channel named after the channels_redis client prefix its socket channels carry
# ("specific.<prefix>!<id>"). Its listener hands the frame to the named sockets in-process,
# as `send_to_users` does for its own: no per-channel queue, no receive loop round trip.
# Pub/sub keeps nothing: a copy for a process that is gone (its channels linger in the
# groups until group_expiry) costs one PUBLISH and no memory, and a copy published while a
# listener reconnects is lost like any live frame; the seq gap makes the client `sync`.

INBOX_PREFIX = "chat.inbox."

_inboxes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Inbox]" = (
    weakref.WeakKeyDictionary()
)


def _process_of(channel_name: str) -> str:
    return channel_name.rpartition("!")[0]


class _Inbox:
    """This process's listener on its inbox (one per event loop)."""

    def __init__(self, layer) -> None:
        self.process = f"specific.{layer.client_prefix}"
        self.name = INBOX_PREFIX + self.process
        self.connection = layer.connection(layer.consistent_hash(self.name))
        self.subscribed = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        while True:
            pubsub = self.connection.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.name)
                self.subscribed.set()
                while True:
                    item = await pubsub.get_message(timeout=None)
                    if item is None or item["type"] != "message":
                        continue
                    try:
                        await _deliver_here(item["data"])
                    except Exception:  # a malformed item: drop it, keep listening
                        logger.exception("inbox %s: undeliverable item", self.name)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.subscribed.clear()
                logger.warning("inbox %s: reconnecting", self.name, exc_info=True)
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


async def ensure_inbox() -> None:
    """Start this process's inbox listener once and wait until it is subscribed, so a
    socket that joins its groups after this gets every copy sent from other processes.
    Nothing to do unless the layer is channels_redis's core layer."""
    layer = get_channel_layer()
    if not _is_redis_core_layer(layer) or getattr(settings, "REALTIME_LAYER", "") == "core":
        return
    loop = asyncio.get_running_loop()
    inbox = _inboxes.get(loop)
    if inbox is None or inbox.task.done():
        inbox = _inboxes[loop] = _Inbox(layer)
    await asyncio.wait_for(inbox.subscribed.wait(), 10)


async def _deliver_here(data: bytes) -> None:
    """One inbox item, `b"<channel> <channel>...\n<frame text>"`, to the named sockets here."""
    header, _, text = data.partition(b"\n")
    event = {"type": "chat.frame", "text": text.decode("utf8")}
    local = _local_sockets.get(asyncio.get_running_loop(), {})
    names = header.decode("ascii").split(" ")
    await _deliver_each((local[name] for name in names if name in local), event)


async def _redis_send_remote(layer, channels: list[str], event: dict, groups) -> None:
    """Copies for channels of other processes: one PUBLISH per process to its inbox, in
    one pipeline per Redis connection. Channels of this process that are not sockets here
    (none in normal operation), or all of them when this loop has no inbox (no socket
    yet), go through the layer."""
    inbox = _inboxes.get(asyncio.get_running_loop())
    if inbox is None:
        await _redis_send_to_channels(layer, sorted(channels), event, groups)
        return
    by_process: dict[str, list[str]] = defaultdict(list)
    for name in channels:
        by_process[_process_of(name)].append(name)
    strays = by_process.pop(inbox.process, [])
    by_connection = defaultdict(list)
    for process, names in by_process.items():
        target = INBOX_PREFIX + process
        payload = (" ".join(names) + "\n" + event["text"]).encode("utf8")
        by_connection[layer.consistent_hash(target)].append((target, payload))
    for index, items in by_connection.items():
        pipe = layer.connection(index).pipeline(transaction=False)
        for target, payload in items:
            pipe.publish(target, payload)
        await pipe.execute()
    if strays:
        await _redis_send_to_channels(layer, sorted(strays), event, groups)


# channels_redis 4.3 RedisChannelLayer.group_send's script, unchanged.
_GROUP_SEND_LUA = """
    local over_capacity = 0
    local current_time = ARGV[#ARGV - 1]
    local expiry = ARGV[#ARGV]
    for i=1,#KEYS do
        if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
            redis.call('ZADD', KEYS[i], current_time, ARGV[i])
            redis.call('EXPIRE', KEYS[i], expiry)
        else
            over_capacity = over_capacity + 1
        end
    end
    return over_capacity
"""


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
