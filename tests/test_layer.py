"""messaging.layer.ChatChannelLayer on real redis-servers: two layer instances stand for
two worker processes. Delivery once and in order, no state left in Redis, a channel's
end, capacity, sharding over two hosts and Redis Sentinel."""

import asyncio
import subprocess
import sys
import textwrap

import pytest
import redis.asyncio as aioredis
from channels.exceptions import ChannelFull

from messaging.layer import ChatChannelLayer, shard_of
from scripts.devstack import RedisServer, find_redis_server, free_port

pytestmark = [pytest.mark.processes, pytest.mark.timeout(60)]


def layers(*hosts, n=2, **config):
    """`n` layers ("processes") on the same hosts."""
    return [ChatChannelLayer(hosts=[{"address": h} for h in hosts], **config) for _ in range(n)]


async def receive_all(layer, channel, count, timeout=5):
    return [await asyncio.wait_for(layer.receive(channel), timeout) for _ in range(count)]


async def nothing_more(layer, channel):
    """True when nothing else is queued for `channel`: a marker sent after everything
    else comes next (sent the same way, it cannot overtake a duplicate)."""
    await layer.send(channel, {"type": "marker"})
    return (await asyncio.wait_for(layer.receive(channel), 5)) == {"type": "marker"}


async def test_once_and_in_order_here_and_in_another_process(redis_server):
    here, there = layers(redis_server.url)
    a1, a2 = await here.new_channel(), await here.new_channel()
    b1 = await there.new_channel()
    for layer, channel in ((here, a1), (here, a2), (there, b1)):
        await layer.group_add("user.1", channel)
    await there.group_add("user.2", b1)
    try:
        # group_send and send to one channel, mixed: one queue, one order
        for i in range(60):
            if i % 3 == 2:
                await here.send(a1, {"type": "t", "i": i})
            await here.group_send("user.1" if i % 2 else "user.2", {"type": "t", "i": i})
        a1_got = [m["i"] for m in await receive_all(here, a1, 50)]
        assert a1_got == sorted(a1_got) and len(a1_got) == 50  # 30 sends + 20 odd group ones
        assert [m["i"] for m in await receive_all(here, a2, 30)] == list(range(1, 60, 2))
        assert [m["i"] for m in await receive_all(there, b1, 60)] == list(range(60))
        assert await nothing_more(here, a1) and await nothing_more(here, a2)
        assert await nothing_more(there, b1)
        # a batch started at once (as send_to_users does) keeps its order too
        await asyncio.gather(*(here.group_send("user.1", {"type": "t", "i": i}) for i in range(40)))
        assert [m["i"] for m in await receive_all(there, b1, 40)] == list(range(40))
    finally:
        await here.flush()
        await there.flush()


async def test_redis_keeps_no_group_state_and_a_channel_ends_with_its_receive(redis_server):
    (layer,) = layers(redis_server.url, n=1, prefix="t2")
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        channel = await layer.new_channel()
        await layer.group_add("user.7", channel)
        before = await client.dbsize()
        assert (await client.pubsub_numsub("t2.group.user.7")) == [(b"t2.group.user.7", 1)]
        receiving = asyncio.ensure_future(layer.receive(channel))
        await layer.group_send("user.7", {"type": "t"})
        assert (await receiving) == {"type": "t"}
        assert await client.dbsize() == before  # nothing stored: pub/sub only
        # A consumer ends by cancelling its receive: its groups and subscriptions go.
        receiving = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0)
        receiving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receiving
        assert (await client.pubsub_numsub("t2.group.user.7")) == [(b"t2.group.user.7", 0)]
        with pytest.raises(RuntimeError):
            await layer.group_add("user.7", channel)
    finally:
        await client.aclose()
        await layer.flush()


DEAD_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from messaging.layer import ChatChannelLayer

    async def main():
        layer = ChatChannelLayer(hosts=[{"address": sys.argv[1]}], prefix="t3")
        channel = await layer.new_channel()
        await layer.group_add("user.9", channel)
        print("joined", flush=True)
        await layer.receive(channel)

    asyncio.run(main())
    """
)


async def test_a_killed_process_leaves_no_member_behind(redis_server):
    """SIGKILL a process with a channel in a group: Redis drops its subscriptions with
    its connection, so the group has no member left within a bound and a send to the
    group reaches nobody and costs nothing."""
    worker = subprocess.Popen(
        [sys.executable, "-c", DEAD_WORKER, redis_server.url], stdout=subprocess.PIPE, text=True
    )
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        assert (await asyncio.to_thread(worker.stdout.readline)).strip() == "joined"
        assert await client.publish("t3.group.user.9", b"") == 1
        worker.kill()
        await asyncio.to_thread(worker.wait, 10)
        deadline = asyncio.get_running_loop().time() + 5
        while await client.publish("t3.group.user.9", b"") != 0:
            assert asyncio.get_running_loop().time() < deadline, "still subscribed after 5 s"
            await asyncio.sleep(0.05)
        assert not await client.keys("t3*")
    finally:
        worker.kill()
        await client.aclose()


async def test_capacity(redis_server):
    (layer,) = layers(redis_server.url, n=1, capacity=2)
    try:
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        await layer.send(channel, {"type": "t", "i": 0})
        await layer.group_send("g", {"type": "t", "i": 1})
        await layer.group_send("g", {"type": "t", "i": 2})  # full: dropped, logged
        with pytest.raises(ChannelFull):
            await layer.send(channel, {"type": "t", "i": 3})
        assert [m["i"] for m in await receive_all(layer, channel, 2)] == [0, 1]
    finally:
        await layer.flush()


@pytest.fixture(scope="module")
def second_redis():
    server = RedisServer().start()
    yield server
    server.stop()


async def test_shards_over_two_redis_hosts(redis_server, second_redis):
    here, there = layers(redis_server.url, second_redis.url, prefix="t4")
    groups = [f"user.{i}" for i in range(12)]
    assert {shard_of(f"t4.group.{g}", 2) for g in groups} == {0, 1}
    clients = [aioredis.Redis.from_url(s.url) for s in (redis_server, second_redis)]
    try:
        channel = await there.new_channel()
        for group in groups:
            await there.group_add(group, channel)
        for i, group in enumerate(groups):
            await here.group_send(group, {"type": "t", "i": i})
        got = sorted(m["i"] for m in await receive_all(there, channel, len(groups)))
        assert got == list(range(len(groups)))
        for index, client in enumerate(clients):  # each host carries its share of groups
            subscribed = {c.decode() for c in await client.pubsub_channels("t4.group.*")}
            assert subscribed == {
                f"t4.group.{g}" for g in groups if shard_of(f"t4.group.{g}", 2) == index
            }
    finally:
        for client in clients:
            await client.aclose()
        await here.flush()
        await there.flush()


@pytest.fixture(scope="module")
def sentinel(second_redis, tmp_path_factory):
    """A redis-server in Sentinel mode watching `second_redis` as master "chatmaster"."""
    directory = tmp_path_factory.mktemp("sentinel")
    port = free_port()
    conf = directory / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
        f"sentinel monitor chatmaster 127.0.0.1 {second_redis.port} 1\n"
    )
    log = open(directory / "sentinel.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [find_redis_server(), str(conf), "--sentinel"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


async def test_sentinel(sentinel, second_redis):
    """hosts as channels_redis documents Sentinel: the master is found through it."""
    hosts = [{"master_name": "chatmaster", "sentinels": [("127.0.0.1", sentinel)]}]
    here = ChatChannelLayer(hosts=hosts, prefix="t5")
    there = ChatChannelLayer(hosts=hosts, prefix="t5")
    watcher = aioredis.Redis.from_url(second_redis.url)
    try:
        # the sentinel answers once it has read its config: wait for it, not a fixed time
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            try:
                channel = await there.new_channel()
                break
            except Exception:
                assert asyncio.get_running_loop().time() < deadline, "sentinel never answered"
                await there.flush()
                await asyncio.sleep(0.1)
        await there.group_add("user.1", channel)
        await here.group_send("user.1", {"type": "t", "via": "sentinel"})
        assert (await asyncio.wait_for(there.receive(channel), 5))["via"] == "sentinel"
        # it went through the master the sentinel named
        assert (await watcher.pubsub_numsub("t5.group.user.1")) == [(b"t5.group.user.1", 1)]
    finally:
        await watcher.aclose()
        await here.flush()
        await there.flush()


async def test_subscriptions_come_back_after_redis_restarts():
    """Redis restarts (everything lost): redis-py reconnects the pub/sub connection and
    subscribes again, so members here are reachable again without any consumer acting."""
    server = RedisServer().start()
    here, there = layers(server.url, prefix="t6")
    client = None
    try:
        channel = await there.new_channel()
        await there.group_add("user.1", channel)
        await here.group_send("user.1", {"type": "t", "i": 0})
        assert (await asyncio.wait_for(there.receive(channel), 5))["i"] == 0
        await asyncio.to_thread(server.kill)
        await asyncio.to_thread(server.restart)
        client = aioredis.Redis.from_url(server.url)
        deadline = asyncio.get_running_loop().time() + 15
        while await client.publish("t6.group.user.1", b"\0" * 8) == 0:  # a token no layer has
            assert asyncio.get_running_loop().time() < deadline, "not subscribed again"
            await asyncio.sleep(0.05)
        while True:  # the publishing side reconnects on its next use
            try:
                await here.group_send("user.1", {"type": "t", "i": 1})
                break
            except Exception:
                assert asyncio.get_running_loop().time() < deadline, "cannot publish again"
                await asyncio.sleep(0.05)
        assert (await asyncio.wait_for(there.receive(channel), 5))["i"] == 1
    finally:
        if client is not None:
            await client.aclose()
        await here.flush()
        await there.flush()
        server.stop()


async def test_channels_made_at_once_are_all_reachable(redis_server):
    """A connect storm: 50 channels made and grouped concurrently on a fresh layer all
    get a group message (one pub/sub connection, not one per first use)."""
    here, there = layers(redis_server.url, prefix="t7")
    try:

        async def join(i):
            channel = await there.new_channel()
            await there.group_add(f"user.{i}", channel)
            return channel

        channels = await asyncio.gather(*(join(i) for i in range(50)))
        await asyncio.gather(
            *(here.group_send(f"user.{i}", {"type": "t", "i": i}) for i in range(50))
        )
        for i, channel in enumerate(channels):
            assert (await asyncio.wait_for(there.receive(channel), 5))["i"] == i
    finally:
        await here.flush()
        await there.flush()


async def test_group_send_many_is_one_group_send_per_group_in_one_publish(redis_server):
    """`group_send_many` to 20 groups: each member channel, here and in another process,
    gets what one `group_send` per group gives (twice when in two of the groups), in
    order with single sends; Redis carries it as one publish to the broadcast topic, and
    below `broadcast_from` as one publish per group."""
    here, there = layers(redis_server.url, prefix="t8", broadcast_from=4)
    watcher = aioredis.Redis.from_url(redis_server.url)
    watch = watcher.pubsub()
    await watch.psubscribe("t8.group*")
    assert (await watch.get_message(timeout=5))["type"] == "psubscribe"
    groups = [f"user.{i}" for i in range(20)]
    try:
        mine, b1, b2, idle = (
            await here.new_channel(),
            await there.new_channel(),
            await there.new_channel(),
            await there.new_channel(),
        )
        await here.group_add("user.0", mine)
        await there.group_add("user.3", b1)
        await there.group_add("user.19", b1)  # in two of the groups
        await there.group_add("user.7", b2)
        await there.group_add("user.99", idle)  # in none of them
        for i in range(30):
            if i % 2:
                await here.group_send_many(groups, {"type": "t", "i": i})
            else:
                await here.group_send("user.7", {"type": "t", "i": i})
        odd = list(range(1, 30, 2))
        assert [m["i"] for m in await receive_all(here, mine, 15)] == odd
        assert [m["i"] for m in await receive_all(there, b1, 30)] == sorted(odd + odd)
        assert [m["i"] for m in await receive_all(there, b2, 30)] == list(range(30))
        for layer, channel in ((here, mine), (there, b1), (there, b2), (there, idle)):
            assert await nothing_more(layer, channel)
        topics = []
        while (item := await watch.get_message(timeout=0.5)) is not None:
            topics.append(item["channel"].decode())
        assert topics.count("t8.groups") == 15 and len(topics) == 30  # 15 + 15 to user.7
        await here.group_send_many(groups[3:6], {"type": "t", "i": 30})  # below broadcast_from
        assert (await receive_all(there, b1, 1))[0]["i"] == 30
        topics = []
        while (item := await watch.get_message(timeout=0.5)) is not None:
            topics.append(item["channel"].decode())
        assert topics == ["t8.group.user.3", "t8.group.user.4", "t8.group.user.5"]
    finally:
        await watch.aclose()
        await watcher.aclose()
        await here.flush()
        await there.flush()


async def test_group_send_many_over_two_hosts(redis_server, second_redis):
    """Sharded: one broadcast per host, each carrying that host's groups."""
    here, there = layers(redis_server.url, second_redis.url, prefix="t9", broadcast_from=2)
    groups = [f"user.{i}" for i in range(12)]
    shards = [shard_of(f"t9.group.{g}", 2) for g in groups]
    assert shards.count(0) >= 2 and shards.count(1) >= 2
    try:
        channel = await there.new_channel()
        for group in groups:
            await there.group_add(group, channel)
        await here.group_send_many(groups, {"type": "t"})
        assert len(await receive_all(there, channel, len(groups))) == len(groups)
        assert await nothing_more(there, channel)
    finally:
        await here.flush()
        await there.flush()
