"""Simulated devices with bookkeeping, for the fault and load scenarios against live workers.

An `Agent` is one device of one user: it keeps one socket (to any of the workers), sends
with a `client_msg_id` and resends the same one (same envelope, so the same `n`) until it
has an ack (after a drop, a timeout or a transient error), records every `message` frame
it receives (live or by sync), de-duplicates by message id like the clients do, and syncs
from its cursors (the last seq with no gap below it) after every reconnect. It keeps its
counter per conversation (§2) and the roster head it seals with. `Ledger` compares what
was sent, stored and delivered, and that every device's `n` rises with `seq` (§9).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from chatclient import protocol
from chatclient.session import ChatSession

TRANSIENT = {"internal_error", "rate_limited"}


def ws_url(base_url: str, device_id: int) -> str:
    return base_url.replace("http://", "ws://") + f"/ws/chat/?device={device_id}"


@dataclass
class Agent:
    name: str
    user_id: int
    device_id: int
    keys: protocol.DeviceKeys
    session: ChatSession
    base_urls: list[str]
    worker: int = 0
    conversations: list[int] = field(default_factory=list)
    received: dict[int, dict[int, int]] = field(default_factory=dict)  # conv -> seq -> id
    frames_received: int = 0
    new_live: int = 0  # messages first seen in a live frame
    new_by_sync: int = 0  # messages first seen in a sync answer (missed live)
    reconnects: int = 0
    resends: int = 0
    errors: list[str] = field(default_factory=list)
    acks: dict[str, dict] = field(default_factory=dict)
    counters: dict[int, int] = field(default_factory=dict)  # conversation -> last n used
    heads: dict[int, str] = field(default_factory=dict)  # conversation -> roster head ("")

    def next_n(self, conversation_id: int) -> int:
        """The next counter of this device in the conversation."""
        self.counters[conversation_id] = self.counters.get(conversation_id, 0) + 1
        return self.counters[conversation_id]

    def __post_init__(self):
        self.connection = None
        self.reader: asyncio.Task | None = None
        self.pending: dict[str, asyncio.Future] = {}
        self.synced: asyncio.Future | None = None
        self.lock = asyncio.Lock()
        self.arrived = asyncio.Event()  # set whenever a message not seen before arrives

    # --- connection --------------------------------------------------------------------

    async def connect(self, attempts: int = 60) -> None:
        """Open a socket to the current worker, else the next; then sync from the cursors."""
        for attempt in range(attempts):
            url = self.base_urls[self.worker % len(self.base_urls)]
            try:
                self.connection = await connect(
                    ws_url(url, self.device_id),
                    additional_headers={"Cookie": self.session.cookie_header()},
                    origin=url,
                    open_timeout=10,
                    max_size=16 * 1024 * 1024,
                    proxy=None,
                )
            except (OSError, TimeoutError, InvalidHandshake):
                self.worker += 1
                await asyncio.sleep(min(2.0, 0.1 * (attempt + 1)) * random.uniform(0.5, 1))
                continue
            self.reader = asyncio.create_task(self._read(self.connection))
            try:
                await self.sync()
            except (ConnectionError, ConnectionClosed, TimeoutError):
                await self.drop()
                continue
            return
        raise ConnectionError(f"{self.name}: no worker answered")

    async def drop(self) -> None:
        """Close the socket without waiting for anything (a client's connection lost)."""
        connection, self.connection = self.connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # already gone
                connection.transport.abort()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)
            self.reader = None

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
        await self.drop()

    async def _read(self, connection) -> None:
        try:
            async for text in connection:
                self.on_frame(json.loads(text))
        except ConnectionClosed:
            pass
        finally:
            for future in [*self.pending.values(), self.synced]:
                if future is not None and not future.done():
                    future.set_exception(ConnectionError("socket closed"))
            if self.connection is connection:
                self.connection = None

    def on_frame(self, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "message":
            self.frames_received += 1
            m = frame["message"]
            seen = self.received.setdefault(m["conversation"], {})
            if m["seq"] not in seen:
                syncing = self.synced is not None and not self.synced.done()
                if syncing:
                    self.new_by_sync += 1
                else:
                    self.new_live += 1
                self.arrived.set()
            seen.setdefault(m["seq"], m["id"])
            if self.received[m["conversation"]][m["seq"]] != m["id"]:
                self.errors.append(f"two ids for seq {m['seq']} in {m['conversation']}")
        elif kind in ("ack", "error") and frame.get("client_msg_id") in self.pending:
            future = self.pending.pop(frame["client_msg_id"])
            if not future.done():
                future.set_result(frame)
        elif kind == "synced" and self.synced is not None and not self.synced.done():
            self.synced.set_result(frame)
        elif kind == "error" and frame.get("code") != "not_member":
            self.errors.append(f"error frame {frame}")

    async def holds(self, counts: dict[int, int], timeout: float) -> bool:
        """Wait until this agent holds at least `counts[c]` messages of each of its
        conversations (woken by each arrival; False after `timeout` or when its socket is
        gone)."""
        deadline = time.monotonic() + timeout
        while any(len(self.received.get(c, {})) < counts.get(c, 0) for c in self.conversations):
            left = deadline - time.monotonic()
            if left <= 0 or self.connection is None:
                return False
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)
        return True

    def cursor(self, conversation_id: int) -> int:
        seqs = self.received.get(conversation_id, {})
        n = 0
        while n + 1 in seqs:
            n += 1
        return n

    async def sync(self, conversations: list[int] | None = None, timeout: float = 60) -> None:
        """Sync until every listed conversation says no more (has_more false)."""
        todo = list(conversations if conversations is not None else self.conversations)
        while todo:
            self.synced = asyncio.get_running_loop().create_future()
            cursors = {str(c): self.cursor(c) for c in todo}
            await self.connection.send(json.dumps({"type": "sync", "cursors": cursors}))
            synced = await asyncio.wait_for(self.synced, timeout)
            todo = [int(c) for c, more in synced["has_more"].items() if more]

    # --- sending -----------------------------------------------------------------------

    async def send(
        self,
        conversation_id: int,
        client_msg_id: str,
        envelope: dict,
        *,
        timeout: float = 30,
        on_sent=None,
    ) -> dict:
        """Send and wait for the ack; after a drop, timeout or transient error, reconnect if
        needed and send the same client_msg_id again. Returns the ack (or final error)."""
        frame = json.dumps(
            {
                "type": "send",
                "conversation": conversation_id,
                "client_msg_id": client_msg_id,
                "envelope": envelope,
            }
        )
        for attempt in itertools.count():
            if attempt:
                self.resends += 1
            if self.connection is None:
                self.reconnects += 1
                await self.connect()
            future = asyncio.get_running_loop().create_future()
            self.pending[client_msg_id] = future
            try:
                await self.connection.send(frame)
                if on_sent is not None:
                    await on_sent(self)
                reply = await asyncio.wait_for(future, timeout)
            except (ConnectionError, ConnectionClosed, TimeoutError, AttributeError):
                self.pending.pop(client_msg_id, None)
                await self.drop()
                await asyncio.sleep(0.2 * random.uniform(0.5, 1))
                continue
            if reply["type"] == "ack":
                self.acks[client_msg_id] = reply
                return reply
            if reply.get("code") in TRANSIENT and attempt < 200:
                await asyncio.sleep(min(2.0, 0.1 * (attempt + 1)))
                continue
            self.errors.append(f"send refused: {reply}")
            return reply
        raise AssertionError("unreachable")


@dataclass
class Ledger:
    """What was sent (client_msg_id -> (conversation, agent, order)), then checked against
    the stored history and each agent's received messages."""

    sent: dict[str, tuple[int, str, int]] = field(default_factory=dict)

    def note(self, client_msg_id: str, conversation_id: int, agent: Agent) -> None:
        self.sent[client_msg_id] = (conversation_id, agent.name, len(self.sent))

    async def stored(self, session: ChatSession, conversation_id: int) -> list[dict]:
        messages, before = [], None
        while True:
            page = await session.history(conversation_id, before_seq=before, limit=100)
            messages = page["messages"] + messages
            if not page["has_more"] or not page["messages"]:
                return messages
            before = page["messages"][0]["seq"]

    async def check(self, figures, members: dict[int, list[Agent]]) -> None:
        """Fill `figures` (sent/stored/delivered/lost/duplicated) and record each failure."""
        stored_total, delivered, expected_deliveries, duplicated = 0, 0, 0, 0
        stored_ids: dict[str, int] = {}
        for conversation_id, agents in members.items():
            stored = await self.stored(agents[0].session, conversation_id)
            stored_total += len(stored)
            seqs = [m["seq"] for m in stored]
            figures.check(
                seqs == list(range(1, len(stored) + 1)),
                f"conversation {conversation_id}: seqs {seqs[:20]}...",
            )
            for m in stored:
                if m["client_msg_id"] in stored_ids:
                    duplicated += 1
                    figures.fail(f"client_msg_id {m['client_msg_id']} stored twice")
                stored_ids[m["client_msg_id"]] = m["seq"]
                figures.check(
                    m["client_msg_id"] in self.sent, f"stored but never sent: {m['client_msg_id']}"
                )
            # Per sender, stored order = send order (each agent waits for its ack).
            by_sender: dict[str, list[int]] = {}
            for m in stored:
                if m["client_msg_id"] in self.sent:
                    _, agent, order = self.sent[m["client_msg_id"]]
                    by_sender.setdefault(agent, []).append(order)
            for agent, orders in by_sender.items():
                figures.check(
                    orders == sorted(orders), f"{agent}: order broken in {conversation_id}"
                )
            # Per device, n strictly rises with seq: no client would flag anything (§9).
            by_device: dict[int, list[int]] = {}
            for m in stored:
                by_device.setdefault(m["sender_device"], []).append(m["envelope"]["n"])
            for device, ns in by_device.items():
                figures.check(
                    all(a < b for a, b in zip(ns, ns[1:], strict=False)),
                    f"device {device}: n {ns[:20]} does not rise with seq in {conversation_id}",
                )
            expect = {m["seq"]: m["id"] for m in stored}
            for agent in agents:
                got = agent.received.get(conversation_id, {})
                expected_deliveries += len(expect)
                have = sum(1 for seq, mid in expect.items() if got.get(seq) == mid)
                delivered += have
                if have != len(expect):
                    missing = sorted(set(expect) - set(got))
                    figures.fail(
                        f"{agent.name}: {len(expect) - have} of conversation {conversation_id} not delivered (seq {missing[:10]})"
                    )
                wrong = [s for s, mid in got.items() if expect.get(s) != mid]
                if wrong:
                    figures.fail(f"{agent.name}: seqs {wrong[:10]} delivered with another id")
        unsent = [cmid for cmid in self.sent if cmid not in stored_ids]
        for cmid in unsent[:10]:
            figures.fail(f"sent but not stored: {cmid}")
        figures.sent = len(self.sent)
        figures.stored = stored_total
        figures.delivered = delivered
        figures.lost = len(unsent) + (expected_deliveries - delivered)
        figures.duplicated = duplicated
