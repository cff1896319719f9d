"""The relay across real processes: redis-server and two daphne workers on loopback.

Shows cross-process fan-out of message/typing/read/presence, gapless seq and every
device's counter rising with seq under concurrent senders (SQLite shared by two
processes, and PostgreSQL), bursts beyond a channel's default capacity, idle sockets past
channels_redis's old 5 s timeout, and that no stored row holds a plaintext.
"""

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis.asyncio as aioredis

from chatclient import protocol
from scripts.people.live import live_user, next_of, recipients_of

pytestmark = [pytest.mark.processes, pytest.mark.timeout(300)]


async def test_two_workers_relay_message_typing_read_presence(live_stack, device_keys):
    stack = live_stack(2)
    left, right = stack.base_urls
    alice = await live_user(left, "alice", device_keys())
    bob = await live_user(right, "bob", device_keys())
    direct = await alice.direct("bob")
    await bob.session.request("POST", f"/api/conversations/{direct['id']}/accept/")  # §6
    a_ws = await alice.socket()
    b_ws = await bob.socket()
    assert (await next_of(a_ws, "presence")) == {
        "type": "presence",
        "user": "bob",
        "user_id": bob.user_id,
        "online": True,
    }

    msg_id, envelope = await alice.seal(
        direct, "across processes", await recipients_of(alice, direct)
    )
    await a_ws.send_frame(
        {
            "type": "send",
            "conversation": direct["id"],
            "client_msg_id": msg_id,
            "envelope": envelope,
        }
    )
    ack = await next_of(a_ws, "ack")
    assert ack["seq"] == 1 and ack["client_msg_id"] == msg_id
    message = (await next_of(b_ws, "message"))["message"]
    assert message["id"] == ack["id"] and message["seq"] == 1
    opened = protocol.open_envelope(
        message["envelope"],
        conversation_id=direct["id"],
        sender_id=alice.user_id,
        client_msg_id=msg_id,
        device_keys=bob.keys,
        sig_public=alice.keys.sig_public,
    )
    assert opened["text"] == "across processes"

    await b_ws.send_frame({"type": "typing", "conversation": direct["id"]})
    assert (await next_of(a_ws, "typing"))["user"] == "bob"
    await b_ws.send_frame({"type": "read", "conversation": direct["id"], "up_to": 1})
    assert (await next_of(a_ws, "read")) == {
        "type": "read",
        "conversation": direct["id"],
        "user": "bob",
        "user_id": bob.user_id,
        "up_to": 1,
    }
    await b_ws.close()
    assert (await next_of(a_ws, "presence"))["online"] is False

    # A worker killed with a socket open leaves no member in Redis (issue 18): its
    # subscriptions go with its connection, within a bound, with nothing to expire.
    redis = aioredis.Redis.from_url(stack.redis_url)
    prefix = "chat" + (urlparse(stack.redis_url).path.strip("/") or "0")
    alice_group = f"{prefix}.group.user.{alice.user_id}"
    try:
        assert await redis.pubsub_numsub(alice_group) == [(alice_group.encode(), 1)]
        await asyncio.to_thread(stack.servers[0].kill)
        deadline = asyncio.get_running_loop().time() + 5
        while (await redis.pubsub_numsub(alice_group))[0][1] != 0:
            assert asyncio.get_running_loop().time() < deadline, "still subscribed after 5 s"
            await asyncio.sleep(0.05)
        assert not await redis.keys(f"{prefix}*")  # no group sets, no queues
    finally:
        await redis.aclose()
        with contextlib.suppress(Exception):  # its worker is gone
            await a_ws.close()


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_concurrent_senders_get_gapless_seqs_and_every_copy(live_stack, device_keys, db):
    """5 devices x 50 messages at once into one group across two workers -> seq 1..250,
    no gap, no duplicate, and every device's n strictly rising with seq (§9: nothing a
    client would flag); a listening member receives all 250 live (a burst well past
    channels_redis's default per-channel capacity of 100)."""
    stack = live_stack(2, db=db)
    users = [await live_user(stack.base_urls[i % 2], f"user{i}", device_keys()) for i in range(6)]
    senders, listener = users[:5], users[5]
    group = await senders[0].create_group(users[1:])
    recipients = await recipients_of(senders[0], group)
    prepared = [
        [await s.seal(group, f"{s.username} #{n}", recipients) for n in range(50)] for s in senders
    ]
    listen_ws = await listener.socket()
    sockets = [await s.socket() for s in senders]

    async def send_all(ws, batch):
        for msg_id, envelope in batch:
            await ws.send_frame(
                {
                    "type": "send",
                    "conversation": group["id"],
                    "client_msg_id": msg_id,
                    "envelope": envelope,
                }
            )
        acks = {}
        while len(acks) < len(batch):
            frame = await ws.recv_frame(timeout=60)
            assert frame["type"] != "error", frame
            if frame["type"] == "ack":
                acks[frame["client_msg_id"]] = frame["seq"]
        return [acks[msg_id] for msg_id, _ in batch]  # in the order sent, i.e. of n

    async def receive_all():
        seqs = []
        while len(seqs) < 250:
            frame = await listen_ws.recv_frame(timeout=60)
            if frame["type"] == "message":
                seqs.append(frame["message"]["seq"])
        return seqs

    receiving = asyncio.create_task(receive_all())
    acks = await asyncio.gather(
        *(send_all(ws, batch) for ws, batch in zip(sockets, prepared, strict=True))
    )
    all_acks = sorted(seq for batch in acks for seq in batch)
    assert all_acks == list(range(1, 251))
    for seqs in acks:  # each device's n 1..50 was stored at strictly rising seqs
        assert seqs == sorted(seqs)
    assert sorted(await receiving) == list(range(1, 251))
    by_seq = {}
    for before in (101, 201, 251):
        page = await listener.session.history(group["id"], before_seq=before, limit=100)
        by_seq.update({m["seq"]: m for m in page["messages"]})
    assert sorted(by_seq) == list(range(1, 251))
    stored: dict[int, list[tuple[int, int]]] = {}
    for seq, m in sorted(by_seq.items()):
        stored.setdefault(m["sender_device"], []).append((seq, m["envelope"]["n"]))
    assert sorted(stored) == sorted(s.device_id for s in senders)
    for pairs in stored.values():  # by seq, n goes 1, 2, ... 50 for every device
        assert [n for _, n in pairs] == list(range(1, 51))
    for ws in [listen_ws, *sockets]:
        await ws.close()


async def test_idle_socket_outlives_redis_timeouts(live_stack, device_keys):
    """channels_redis 4.3 + redis-py 8 killed idle consumers after ~5 s (#422): idle 12 s."""
    stack = live_stack(1)
    alice = await live_user(stack.base_url, "alice", device_keys())
    bob = await live_user(stack.base_url, "bob", device_keys())
    direct = await alice.direct("bob")
    b_ws = await bob.socket()
    await asyncio.sleep(12)
    msg_id, envelope = await alice.seal(direct, "still there?", await recipients_of(alice, direct))
    await alice.session.send_message(direct["id"], msg_id, envelope)
    assert (await next_of(b_ws, "message"))["message"]["client_msg_id"] == msg_id
    await b_ws.send_frame({"type": "ping"})
    assert await next_of(b_ws, "pong") == {"type": "pong"}
    await b_ws.close()


async def test_database_holds_no_plaintext(live_stack, device_keys):
    """After a chat over both transports, no column of any row contains a message text."""
    stack = live_stack(1)
    alice = await live_user(stack.base_url, "alice", device_keys())
    bob = await live_user(stack.base_url, "bob", device_keys())
    direct = await alice.direct("bob")
    recipients = await recipients_of(alice, direct)
    canaries = [f"canary-plaintext-{n}-{protocol.new_client_msg_id()}" for n in range(6)]
    a_ws = await alice.socket()
    for text in canaries[:3]:
        msg_id, envelope = await alice.seal(direct, text, recipients)
        await a_ws.send_frame(
            {
                "type": "send",
                "conversation": direct["id"],
                "client_msg_id": msg_id,
                "envelope": envelope,
            }
        )
        await next_of(a_ws, "ack")
    for text in canaries[3:]:
        msg_id, envelope = await bob.seal(direct, text, recipients)
        await bob.session.send_message(direct["id"], msg_id, envelope)
    await a_ws.close()
    database = Path(stack.database_url.removeprefix("sqlite:///"))
    stored = 0
    with sqlite3.connect(database) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 (table names from sqlite_master)
                for value in row:
                    blob = value if isinstance(value, bytes) else str(value).encode()
                    stored += table == "messaging_message"
                    for canary in canaries:
                        assert canary.encode() not in blob, (table, row)
                        assert protocol.b64encode(canary.encode())[:20].encode() not in blob
    assert stored > 0
