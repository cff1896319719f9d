"""The chat's channel layer: Redis pub/sub between processes, straight to the queue here.

Configured in ``CHANNEL_LAYERS`` (Channels' extension point) as
``messaging.layer.ChatChannelLayer``, with ``hosts`` written as channels_redis documents
them: ``{"address": "redis://…"}`` (more keys go to redis-py), several of them to shard
by name, or ``{"master_name": …, "sentinels": [(host, port)], "sentinel_kwargs": …}`` for
Redis Sentinel. Written on the public APIs of Channels (``BaseChannelLayer``) and
redis-py only.

The model is channels_redis's ``RedisPubSubChannelLayer``:

* a channel's messages wait in one in-process queue of the process that made it; a
  process subscribes to its channels and to the groups its channels are in;
* ``group_send`` publishes once per group; Redis keeps no group sets and no queues, so
  when a process dies its connections close and its subscriptions go with them: nothing
  lingers to expire or to clean up;
* delivery is at most once: a message published while a subscription (re)connects is
  lost, like any live frame (clients close seq gaps with ``sync``).

What it adds, for speed:

* a member channel of this process gets the message put straight into its queue; the
  copy this process's own subscription gets back from Redis carries this layer's token
  and is dropped unread (Redis cannot leave the publisher out);
* publishes made while the previous batch is on the wire go out together, in one
  pipeline per Redis host: a message to 20 users' groups is one round trip;
* a message that reaches several channels here is decoded once;
* ``group_send_many`` (an extension: one message to many groups) publishes it once per
  Redis host when it names at least ``broadcast_from`` groups there: to that host's
  broadcast topic, with the group names, which every process with a member in a group
  of that host reads. Fewer groups go one publish per group, as ``group_send``. Either
  way a channel gets what one ``group_send`` per group would have given it, in the same
  order with the rest (one connection per host).

Order: every message for a channel goes through its one queue, so messages from one
process to one channel arrive in the order they were sent (this process: call order;
another: one connection per Redis host, one flusher per host). A consumer is reachable
this one way only.
"""

import asyncio
import binascii
import contextlib
import logging
import secrets
import types
import uuid

import msgpack
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer
from redis import asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

logger = logging.getLogger(__name__)


def shard_of(name: str, shards: int) -> int:
    """The host index of a channel or group name: CRC32 over a ring of 4096, as
    channels_redis documents its sharding."""
    if shards == 1:
        return 0
    return int((binascii.crc32(name.encode("utf8")) & 0xFFF) / (4096 / shards))


def redis_client(host: dict) -> aioredis.Redis:
    """A redis-py client for one ``hosts`` entry (URL, Sentinel, or connection kwargs)."""
    host = dict(host)
    # No read timeout unless asked: redis-py 8's default (5 s) would cut the pub/sub
    # connection's idle blocking read, and a reconnect loses what is published meanwhile.
    host.setdefault("socket_timeout", None)
    if "address" in host:
        return aioredis.Redis.from_url(host.pop("address"), **host)
    if "master_name" in host:
        sentinel = Sentinel(
            host.pop("sentinels"), sentinel_kwargs=host.pop("sentinel_kwargs", None)
        )
        return sentinel.master_for(host.pop("master_name"), **host)
    return aioredis.Redis(**host)


class ChatChannelLayer(BaseChannelLayer):
    """A Channels layer on Redis pub/sub (see the module's docstring)."""

    extensions = ["groups", "flush", "group_send_many"]

    def __init__(
        self,
        hosts=None,
        prefix="chat",
        capacity=10000,
        expiry=60,
        channel_capacity=None,
        broadcast_from=8,
    ):
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        if broadcast_from < 1:
            raise ValueError("broadcast_from is at least 1")
        self.broadcast_from = broadcast_from
        if isinstance(hosts, (str, bytes)):
            raise ValueError("hosts is a list of hosts, even for one")
        self.hosts = [h if isinstance(h, dict) else {"address": h} for h in hosts or []]
        self.hosts = self.hosts or [{"address": "redis://localhost:6379"}]
        self.prefix = prefix
        self.channel_capacity = self.compile_capacities(channel_capacity or {})
        self._loops: dict[asyncio.AbstractEventLoop, _LoopLayer] = {}

    def _here(self) -> "_LoopLayer":
        """This event loop's state (asyncio objects and connections belong to one loop);
        closed with the loop, as async_to_sync's short-lived loops are."""
        loop = asyncio.get_running_loop()
        here = self._loops.get(loop)
        if here is None:
            here = self._loops[loop] = _LoopLayer(self)
            _close_with(loop, self)
        return here

    # --- the channel layer API ---------------------------------------------------------

    async def new_channel(self, prefix="specific."):
        return await self._here().new_channel(prefix)

    async def send(self, channel, message):
        assert self.require_valid_channel_name(channel)
        await self._here().send(channel, message)

    async def receive(self, channel):
        assert self.require_valid_channel_name(channel)
        return await self._here().receive(channel)

    async def group_add(self, group, channel):
        assert self.require_valid_group_name(group) and self.require_valid_channel_name(channel)
        await self._here().group_add(group, channel)

    async def group_discard(self, group, channel):
        assert self.require_valid_group_name(group) and self.require_valid_channel_name(channel)
        await self._here().group_discard(group, channel)

    async def group_send(self, group, message):
        assert self.require_valid_group_name(group)
        await self._here().group_send(group, message)

    async def group_send_many(self, groups, message):
        """`group_send` of one message to each of these groups, in their order, published
        in one message per Redis host where they are many (see the module's docstring);
        raises what publishing raised, after every host was tried."""
        groups = list(groups)
        for group in groups:
            assert self.require_valid_group_name(group)
        await self._here().group_send_many(groups, message)

    async def flush(self):
        loop = asyncio.get_running_loop()
        here = self._loops.pop(loop, None)
        if here is not None:
            await here.close()


def _close_with(loop: asyncio.AbstractEventLoop, layer: ChatChannelLayer) -> None:
    """Close `layer`'s connections of `loop` before the loop itself closes."""
    close = loop.close

    def closing(self, *args, **kwargs):
        here = layer._loops.pop(loop, None)
        if here is not None and not loop.is_closed():
            loop.run_until_complete(here.close())
        self.close = close
        return close(*args, **kwargs)

    loop.close = types.MethodType(closing, loop)


class _LoopLayer:
    """One event loop's queues, group members and Redis hosts."""

    def __init__(self, layer: ChatChannelLayer) -> None:
        self.layer = layer
        self.token = secrets.token_bytes(8)  # marks what this process publishes
        self.queues: dict[str, asyncio.Queue] = {}
        self.groups: dict[str, set[str]] = {}  # group -> channels here
        self.member_of: dict[str, set[str]] = {}  # channel here -> its groups
        self._broadcast = f"{layer.prefix}.groups"  # group_send_many's topic on each host
        self.hosts = [_Host(self, host) for host in layer.hosts]

    def _host(self, topic: str) -> "_Host":
        return self.hosts[shard_of(topic, len(self.hosts))]

    def _topic(self, group: str) -> str:
        return f"{self.layer.prefix}.group.{group}"

    def _encode(self, message: dict) -> bytes:
        return self.token + msgpack.packb(message, use_bin_type=True)

    def _put(self, channel: str, message: dict) -> bool:
        queue = self.queues.get(channel)
        if queue is None:
            return False
        if queue.full():
            logger.info("channel %s over capacity: message dropped", channel)
            return False
        queue.put_nowait(message)
        return True

    def _encode_many(self, groups: list[str], message: dict) -> bytes:
        """The token, then the group names and the message as two msgpack objects (a
        process reads the names, and the message only if it has one of them)."""
        pack = msgpack.packb
        return self.token + pack(groups, use_bin_type=True) + pack(message, use_bin_type=True)

    def _deliver_many(self, data: bytes) -> None:
        """Another process's `group_send_many`: the event to the members here of its
        groups, one copy per group (decoded only when there is a member here)."""
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=len(data))
        unpacker.feed(data[8:])
        members = [self.groups.get(group, ()) for group in unpacker.unpack()]
        if any(members):
            message = unpacker.unpack()
            for channels in members:
                for channel in channels:
                    self._put(channel, message)

    def deliver(self, topic: str, data: bytes) -> None:
        """A message from Redis to the channel, or the groups' members, here."""
        if data[:8] == self.token:  # published here, delivered here already
            return
        if topic == self._broadcast:
            self._deliver_many(data)
            return
        message = msgpack.unpackb(data[8:], raw=False)
        if topic in self.queues:
            self._put(topic, message)
            return
        group = topic.removeprefix(self.layer.prefix + ".group.")
        for channel in self.groups.get(group, ()):
            self._put(channel, message)

    async def new_channel(self, prefix: str) -> str:
        channel = f"{self.layer.prefix}.{prefix}{uuid.uuid4().hex}"
        self.queues[channel] = asyncio.Queue(self.layer.get_capacity(channel))
        await self._host(channel).subscribe(channel)
        return channel

    async def send(self, channel: str, message: dict) -> None:
        if channel in self.queues:
            if not self._put(channel, message):
                raise ChannelFull(channel)
            return
        await self._host(channel).publish(channel, self._encode(message))

    async def receive(self, channel: str) -> dict:
        queue = self.queues.get(channel)
        if queue is None:  # a channel named elsewhere, received here: subscribe to it
            queue = self.queues[channel] = asyncio.Queue(self.layer.get_capacity(channel))
            await self._host(channel).subscribe(channel)
        try:
            return await queue.get()
        except asyncio.CancelledError:
            # Channels has no "delete channel": a consumer's receive is cancelled when it
            # ends, so its channel, its group memberships and subscriptions end here.
            await self._forget(channel)
            raise

    async def _forget(self, channel: str) -> None:
        if self.queues.pop(channel, None) is None:
            return
        try:
            for group in list(self.member_of.get(channel, ())):
                await self.group_discard(group, channel)
            await self._host(channel).unsubscribe(channel)
        except Exception:
            logger.exception("channel %s: cleanup failed", channel)

    async def group_add(self, group: str, channel: str) -> None:
        if channel not in self.queues:
            raise RuntimeError("group_add() takes a channel of this process (new_channel())")
        members = self.groups.setdefault(group, set())
        members.add(channel)
        self.member_of.setdefault(channel, set()).add(group)
        if len(members) == 1:
            host = self._host(self._topic(group))
            host.groups += 1
            await host.subscribe(self._broadcast)  # the group's host carries its broadcasts
            await host.subscribe(self._topic(group))

    async def group_discard(self, group: str, channel: str) -> None:
        members = self.groups.get(group)
        if members is None or channel not in members:
            return
        members.discard(channel)
        self.member_of.get(channel, set()).discard(group)
        if not self.member_of.get(channel, True):
            del self.member_of[channel]
        if not members:
            del self.groups[group]
            host = self._host(self._topic(group))
            host.groups -= 1
            await host.unsubscribe(self._topic(group))
            if not host.groups:
                await host.unsubscribe(self._broadcast)

    async def group_send(self, group: str, message: dict) -> None:
        members = self.groups.get(group, ())
        if members:  # before publishing: the channels here get it even if Redis fails
            for channel in list(members):
                self._put(channel, message)
        topic = self._topic(group)
        await self._host(topic).publish(topic, self._encode(message))

    async def group_send_many(self, groups: list[str], message: dict) -> None:
        for group in groups:  # before publishing, as group_send
            for channel in list(self.groups.get(group, ())):
                self._put(channel, message)
        by_host: dict[int, list[str]] = {}
        for group in groups:
            by_host.setdefault(shard_of(self._topic(group), len(self.hosts)), []).append(group)
        encoded = None
        publishing = []
        for index, names in by_host.items():
            host = self.hosts[index]
            if len(names) >= self.layer.broadcast_from:
                publishing.append(host.publish(self._broadcast, self._encode_many(names, message)))
                continue
            encoded = encoded or self._encode(message)
            publishing += [host.publish(self._topic(name), encoded) for name in names]
        results = await asyncio.gather(*publishing, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]

    async def close(self) -> None:
        for host in self.hosts:
            await host.close()
        self.queues.clear()
        self.groups.clear()
        self.member_of.clear()


class _Host:
    """One Redis host: a client for publishing (batched) and one pub/sub connection with
    its listener task."""

    def __init__(self, here: _LoopLayer, config: dict) -> None:
        self.here = here
        self.config = config
        self.client: aioredis.Redis | None = None
        self.pubsub = None
        self.listener: asyncio.Task | None = None
        self.topics: set[str] = set()
        self.groups = 0  # groups with members here whose topic is on this host
        self.pending: list[tuple[str, bytes, asyncio.Future]] = []
        self.flusher: asyncio.Task | None = None
        # (Un)subscribes one at a time: redis-py's PubSub connects on first use, and two
        # first uses at once would each open a connection, one of them never read.
        self.subscribing = asyncio.Lock()

    def _client(self) -> aioredis.Redis:
        if self.client is None:
            self.client = redis_client(self.config)
        return self.client

    async def publish(self, topic: str, data: bytes) -> None:
        """Publish; waits until Redis has taken it (raises what the batch raised)."""
        done = asyncio.get_running_loop().create_future()
        self.pending.append((topic, data, done))
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.ensure_future(self._flush())
        await done

    async def _flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            try:
                pipe = self._client().pipeline(transaction=False)
                for topic, data, _ in batch:
                    pipe.publish(topic, data)
                await pipe.execute()
            except Exception as exc:
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for *_, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def subscribe(self, topic: str) -> None:
        if topic in self.topics:
            return
        self.topics.add(topic)
        async with self.subscribing:
            if self.pubsub is None:
                self.pubsub = self._client().pubsub(ignore_subscribe_messages=True)
            await self.pubsub.subscribe(topic)
            if self.listener is None or self.listener.done():
                self.listener = asyncio.ensure_future(self._listen())

    async def unsubscribe(self, topic: str) -> None:
        if topic in self.topics:
            self.topics.discard(topic)
            async with self.subscribing:
                await self.pubsub.unsubscribe(topic)

    async def _listen(self) -> None:
        while True:
            try:
                item = await self.pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis gone: redis-py reconnects and subscribes again
                logger.warning("channel layer: pub/sub connection lost, retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if item is None or item.get("type") != "message":
                continue
            topic = item["channel"]
            try:
                self.here.deliver(
                    topic.decode() if isinstance(topic, bytes) else topic, item["data"]
                )
            except Exception:
                logger.exception("channel layer: undeliverable message on %s", topic)

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.listener
        if self.flusher is not None and not self.flusher.done():
            await self.flusher
        if self.pubsub is not None:
            await self.pubsub.aclose()
        if self.client is not None:
            await self.client.aclose()
        self.client = self.pubsub = self.listener = None
        self.topics.clear()
        self.groups = 0
