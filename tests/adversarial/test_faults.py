"""Faults with messages in flight, against two daphne workers, Redis and a database:
Redis restarted; one of two workers killed; a client's connection dropped between send
and ack (it resends the same client_msg_id); the database briefly locked (SQLite) or
unavailable (PostgreSQL stopped and started). After recovery every message sent is stored
exactly once and every member device has every seq (live frames + sync after reconnect,
de-duplicated by message id), in per-sender send order.
"""

import asyncio
import contextlib
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from chatclient import protocol
from scripts.devstack import PostgresServer, postgres_unavailable_reason
from scripts.people.live import add_device, live_user
from tests.adversarial.agents import Agent, Ledger
from tests.adversarial.figures import Figures

pytestmark = [pytest.mark.processes, pytest.mark.timeout(300)]

PER_AGENT = 16


async def world(stack, device_keys):
    """alice (two devices), bob, carol, dave, erin; direct alice-bob and carol-dave, a
    group of all five. Returns (agents, members: conversation -> agents, alice's session)."""
    urls = stack.base_urls
    names = ["alice", "bob", "carol", "dave", "erin"]
    users = [
        await live_user(urls[i % len(urls)], name, device_keys()) for i, name in enumerate(names)
    ]
    agents = []
    for i, user in enumerate(users):
        agents.append(
            Agent(
                user.username, user.user_id, user.device_id, user.keys, user.session, urls, worker=i
            )
        )
    alice = users[0]
    extra_keys = device_keys()
    device = await add_device(alice, extra_keys, "second")  # certified by her identity
    agents.append(
        Agent("alice#2", alice.user_id, device["id"], extra_keys, alice.session, urls, worker=1)
    )
    direct1 = await alice.direct("bob")
    direct2 = await users[2].direct("dave")
    group = await alice.create_group(users[1:])
    for agent in agents:
        agent.heads[group["id"]] = group["roster_head"]["hash"]
    by_name = {a.name: a for a in agents}
    members = {
        direct1["id"]: [by_name["alice"], by_name["alice#2"], by_name["bob"]],
        direct2["id"]: [by_name["carol"], by_name["dave"]],
        group["id"]: agents,
    }
    for conversation_id, member_agents in members.items():
        for agent in member_agents:
            agent.conversations.append(conversation_id)
    return agents, members, alice.session


async def traffic(
    agents, members, ledger, *, per_agent=PER_AGENT, pause=0.03, on_sent=None, progress=None
):
    """Every agent sends `per_agent` messages round-robin over its conversations."""
    recipients = {
        cid: {a.keys.enc_kid: a.keys.enc_public for a in member_agents}
        for cid, member_agents in members.items()
    }

    async def run(agent):
        for n in range(per_agent):
            cid = agent.conversations[n % len(agent.conversations)]
            msg_id = protocol.new_client_msg_id()
            envelope = await asyncio.to_thread(
                protocol.seal_envelope,
                protocol.text_message(f"{agent.name} {n}"),
                conversation_id=cid,
                sender_id=agent.user_id,
                client_msg_id=msg_id,
                n=agent.next_n(cid),
                head=agent.heads.get(cid, ""),
                sender_keys=agent.keys,
                recipient_keys=recipients[cid],
            )
            ledger.note(msg_id, cid, agent)
            await agent.send(cid, msg_id, envelope, on_sent=on_sent)
            if progress is not None:
                progress.append(msg_id)
            await asyncio.sleep(pause)

    for agent in agents:
        await agent.connect()
    await asyncio.gather(*(run(agent) for agent in agents))


async def settle(agents):
    """What a client does after trouble: reconnect if needed, then sync from its cursors."""
    for agent in agents:
        if agent.connection is None:
            agent.reconnects += 1
            await agent.connect()
        else:
            await agent.sync()


async def finish(figures, agents, members, ledger, reader):
    await settle(agents)
    await ledger.check(figures, members)
    reconnects = sum(a.reconnects for a in agents)
    resends = sum(a.resends for a in agents)
    frames = sum(a.frames_received for a in agents)
    by_sync = sum(a.new_by_sync for a in agents)
    figures.notes = (
        f"reconnects {reconnects}, resends {resends}, message frames received {frames} "
        f"(de-duplicated by id; {by_sync} deliveries came by sync)"
    )
    for agent in agents:
        for error in agent.errors[:3]:
            figures.fail(f"{agent.name}: {error}")
        await agent.close()
    figures.cases = len(ledger.sent)
    figures.assert_clean()


class Progress(list):
    """The client_msg_ids sent so far; `reached` waits for a count (woken by each append)."""

    def __init__(self):
        super().__init__()
        self.grew = asyncio.Event()

    def append(self, item) -> None:
        super().append(item)
        self.grew.set()

    async def reached(self, count: int, timeout: float = 120) -> None:
        """Return once `count` were sent, or after `timeout` (the fault comes anyway)."""
        deadline = time.monotonic() + timeout
        while len(self) < count and (left := deadline - time.monotonic()) > 0:
            self.grew.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.grew.wait(), left)


async def when(progress: Progress, count: int) -> None:
    await progress.reached(count)


async def test_redis_restarted_with_messages_in_flight(live_stack, redis_server, device_keys):
    stack = live_stack(2)
    agents, members, reader = await world(stack, device_keys)
    figures, ledger, progress = Figures("fault: Redis restarted"), Ledger(), Progress()

    async def fault():
        await when(progress, len(agents) * PER_AGENT // 3)
        await asyncio.to_thread(redis_server.restart)

    await asyncio.gather(traffic(agents, members, ledger, progress=progress), fault())
    await finish(figures, agents, members, ledger, reader)


async def test_one_of_two_workers_killed(live_stack, device_keys):
    stack = live_stack(2)
    agents, members, reader = await world(stack, device_keys)
    figures, ledger, progress = (
        Figures("fault: one of two daphne workers killed"),
        Ledger(),
        Progress(),
    )

    async def fault():
        await when(progress, len(agents) * PER_AGENT // 3)
        await asyncio.to_thread(stack.kill, 1)

    await asyncio.gather(traffic(agents, members, ledger, progress=progress), fault())
    await finish(figures, agents, members, ledger, reader)


async def test_connection_dropped_between_send_and_ack(live_stack, device_keys):
    stack = live_stack(2)
    agents, members, reader = await world(stack, device_keys)
    figures, ledger = Figures("fault: connection dropped between send and ack"), Ledger()
    dropped = []

    async def drop_some(agent):
        # Every third send of every agent: the frame is out, the socket is cut at once.
        if (agent.resends + len(agent.acks)) % 3 == 0 and len(dropped) < 200:
            dropped.append(agent.name)
            await agent.drop()

    await traffic(agents, members, ledger, on_sent=drop_some)
    await finish(figures, agents, members, ledger, reader)
    assert len(dropped) > 10


def hold_sqlite_lock(path: Path, seconds: float, started: threading.Event) -> None:
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.execute("BEGIN EXCLUSIVE")
        started.set()
        time.sleep(seconds)
        db.execute("COMMIT")
    finally:
        db.close()


async def test_sqlite_database_briefly_locked(live_stack, device_keys):
    stack = live_stack(2, db="sqlite")
    agents, members, reader = await world(stack, device_keys)
    figures, ledger, progress = Figures("fault: database locked 4 s (SQLite)"), Ledger(), Progress()
    database = Path(stack.database_url.removeprefix("sqlite:///"))

    async def fault():
        await when(progress, len(agents) * PER_AGENT // 3)
        started = threading.Event()
        await asyncio.to_thread(hold_sqlite_lock, database, 4.0, started)

    await asyncio.gather(traffic(agents, members, ledger, progress=progress), fault())
    await finish(figures, agents, members, ledger, reader)


@pytest.fixture
def own_postgres():
    reason = postgres_unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = PostgresServer().start()
    yield server
    server.stop()


async def test_postgres_briefly_unavailable(live_stack, own_postgres, device_keys):
    stack = live_stack(2, db=own_postgres.new_database("faults"))
    agents, members, reader = await world(stack, device_keys)
    figures, ledger, progress = (
        Figures("fault: database down 3 s (PostgreSQL stopped)"),
        Ledger(),
        Progress(),
    )

    async def fault():
        await when(progress, len(agents) * PER_AGENT // 3)
        await asyncio.to_thread(own_postgres.bounce, 3)  # down 3 s, then back

    await asyncio.gather(traffic(agents, members, ledger, progress=progress), fault())
    await finish(figures, agents, members, ledger, reader)
