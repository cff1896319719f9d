"""Stay connected: the WebSocket loop with in-order delivery, sync and reconnects.

Per conversation the client keeps a cursor (the last seq handled). On every
(re)connection it verifies every conversation (rosters, rollbacks) and this account's
own identity and devices, then syncs all conversations from their cursors; live
``message`` frames are handled only in seq order - a frame past a gap is held and a
``sync`` fills the gap, so nothing is shown twice or skipped. ``conversation`` frames
are verified (§8), ``devices_changed`` fetches that user's identity and devices again
(§7.4), ``link_request`` frames become ``LinkRequested`` events, and a rollback (§9)
makes the conversation be read again from where it forked; ``typing``, ``read`` and
``presence`` frames become ``Typing``, ``ReadMark`` and ``Presence`` events. A dropped
connection is retried with exponential backoff (with jitter) capped at
``RECONNECT_CAP`` seconds, so the client is back within a few seconds of the server
(logged as "reconnected"), as are 5xx and 429 answers. A 4401 close (the session ended)
logs in again when the session holds the password (``ChatSession.keep_logged_in``);
otherwise 4401/4403 closes end the loop with ``SocketClosed`` (``DeviceRevoked`` when
this device was revoked), and other API errors (401, a refused Origin) propagate.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .errors import ChatApiError, ChatError, DeviceRevoked, ServerUnreachable, SocketClosed
from .events import (
    ConversationChanged,
    DevicesChanged,
    LinkRequested,
    Presence,
    ReadMark,
    Rollback,
    ServerNotice,
    Status,
    Typing,
)
from .ws import ChatSocket

if TYPE_CHECKING:
    from .client import ChatClient

logger = logging.getLogger(__name__)

MAX_GAP_SYNCS = 3  # a gap still open after this many syncs is skipped (server's fault)
RECONNECT_CAP = 3.0  # seconds: the longest wait between two reconnection attempts


class Backoff:
    """Delays 0.5, 1, 2, 4 ... capped at ``maximum`` seconds, each scaled by 0.5-1.0."""

    def __init__(self, first: float = 0.5, maximum: float = RECONNECT_CAP) -> None:
        self.first, self.maximum, self.attempt = first, maximum, 0

    def next(self) -> float:
        delay = min(self.maximum, self.first * 2**self.attempt)
        self.attempt += 1
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempt = 0


async def listen(client: ChatClient, *, since: str = "cursor") -> AsyncIterator:
    """Yield events until cancelled (see ``ChatClient.events``).

    ``since="cursor"`` starts each conversation without a cursor at its current
    ``last_seq`` (only new messages); ``since="start"`` replays them from seq 1.
    Conversations first seen after the start are always read from seq 1.
    """
    backoff = Backoff()
    first = True
    down: str | None = None  # why the last connection ended, until the next one is up
    while True:
        connection = _Connection(client, new_at_last_seq=first and since != "start")
        try:
            async for event in connection.run():
                if isinstance(event, Status) and event.state == "connected":
                    backoff.reset()
                    first = False
                    if down is not None:
                        logger.info("reconnected (after: %s)", down)
                        down = None
                yield event
            reason = "closed"
        except SocketClosed as error:
            if error.code == 4403:
                await _refused(client, error)
            if error.code == 4401 and client.session.can_relogin:
                await client.session.relogin()  # a refused password raises ChatApiError
                logger.info("session ended (4401): logged in again")
            elif error.fatal:
                raise
            reason = str(error)
        except (ServerUnreachable, OSError, TimeoutError) as error:
            reason = str(error) or type(error).__name__
        except ChatApiError as error:
            if not error.transient:
                raise
            reason = str(error)
        delay = backoff.next()
        down = reason
        logger.info("disconnected (%s); retrying in %.1fs", reason, delay)
        yield Status("disconnected", reason, retry_in=delay)
        await asyncio.sleep(delay)


async def _refused(client: ChatClient, error: SocketClosed) -> None:
    """After a 4403 close: ``DeviceRevoked`` if this device is revoked (else the close
    stands: a deactivated account, or the check itself failed)."""
    try:
        await client.check_device()
    except DeviceRevoked as revoked:
        raise revoked from error
    except ChatError:
        pass


class _Connection:
    """One socket's life: sync from the cursors, then handle frames in seq order."""

    def __init__(self, client: ChatClient, *, new_at_last_seq: bool) -> None:
        self.client = client
        self.new_at_last_seq = new_at_last_seq
        self.held: dict[int, dict[int, dict]] = {}  # conversation -> seq -> message
        self.gap_syncs: dict[int, int] = {}
        self.socket: ChatSocket | None = None

    async def run(self) -> AsyncIterator:
        client = self.client
        for conversation in await client.conversations():
            if client.cursor(conversation["id"]) is None:
                start = conversation["last_seq"] if self.new_at_last_seq else 0
                client.advance(conversation["id"], start)
        try:
            await client.directory.user(client.username, refresh=True)
        except ChatError as error:  # shown, but listening goes on
            logger.warning("own identity and devices: %s", error)
        for event in client.pop_notices():
            yield event
        self.socket = await ChatSocket.open(client.session, client.device_id)
        self.socket.start_reading()  # the client's sends get their acks on it (ws module)
        client.socket = self.socket
        try:
            await self.sync(list(client.cursors))
            connected = False
            while True:
                frame = await self.socket.recv_frame()
                async for event in self.handle(frame):
                    yield event
                if not connected and frame.get("type") == "synced":
                    connected = True
                    yield Status("connected")
                async for event in self.notices():
                    yield event
        finally:
            client.socket = None
            await self.socket.close()

    async def notices(self) -> AsyncIterator:
        """The client's queued notices; a rollback makes its conversation sync again."""
        resync = []
        for event in self.client.pop_notices():
            if isinstance(event, Rollback):
                self.held.pop(event.conversation, None)
                self.gap_syncs.pop(event.conversation, None)
                resync.append(event.conversation)
            yield event
        if resync:
            await self.sync(resync)

    async def sync(self, conversation_ids: list[int]) -> None:
        cursors = {str(c): self.client.cursor(c) or 0 for c in conversation_ids}
        await self.socket.send_frame({"type": "sync", "cursors": cursors})

    async def handle(self, frame: dict) -> AsyncIterator:
        kind = frame.get("type")
        client = self.client
        if kind == "message" and isinstance(frame.get("message"), dict):
            async for event in self.on_message(frame["message"]):
                yield event
        elif kind == "synced":
            await self.on_synced(frame)
            for conversation_id in list(self.held):
                async for event in self.drain(conversation_id, force=False):
                    yield event
        elif kind == "conversation" and isinstance(frame.get("conversation"), dict):
            conversation = frame["conversation"]
            if isinstance(conversation.get("id"), int):
                await client.observe(conversation)
                if client.cursor(conversation["id"]) is None:
                    client.advance(conversation["id"], 0)
                    await self.sync([conversation["id"]])
            yield ConversationChanged(conversation)
        elif kind == "devices_changed" and isinstance(frame.get("user"), str):
            client.directory.forget(frame["user"])
            try:
                await client.directory.user(frame["user"], refresh=True)
            except ChatError as error:  # a vanished user: nothing to compare
                logger.info("identity and devices of %s: %s", frame["user"], error)
            yield DevicesChanged(frame["user"])
        elif kind == "typing" and _fields(frame, conversation=int, user=str):
            yield Typing(frame["conversation"], frame["user"])
        elif kind == "read" and _fields(frame, conversation=int, user=str, up_to=int):
            yield ReadMark(frame["conversation"], frame["user"], frame["up_to"])
        elif kind == "presence" and _fields(frame, user=str, online=bool):
            yield Presence(frame["user"], frame["online"])
        elif kind == "link_request" and isinstance(frame.get("link_request"), dict):
            event = self.link_request(frame["link_request"])
            if event is not None:
                yield event
        elif kind == "error":
            if frame.get("code") == "not_member" and isinstance(frame.get("conversation"), int):
                client.forget_cursor(frame["conversation"])
            yield ServerNotice(str(frame.get("code")), str(frame.get("detail", "")), frame)

    def link_request(self, request: dict) -> LinkRequested | None:
        """A new device's request, with the code this device computes for it."""
        from .linking import check_request

        keys = self.client.keys
        if keys.id_private is None:
            return None
        try:
            checked = check_request(request, self.client.user_id, keys.id_kid)
        except ChatError as error:
            logger.warning("link request %s refused: %s", request.get("id"), error)
            return None
        return LinkRequested(checked.id, checked.name, checked.code, checked.expires)

    async def on_message(self, message: dict) -> AsyncIterator:
        conversation_id, seq = message.get("conversation"), message.get("seq")
        if not isinstance(conversation_id, int) or not isinstance(seq, int):
            return
        cursor = self.client.cursor(conversation_id)
        if cursor is None:  # a conversation we did not know: read it from the start
            self.client.advance(conversation_id, 0)
            cursor = 0
        if seq <= cursor:
            return  # already handled (own fan-out, sync overlap)
        self.held.setdefault(conversation_id, {})[seq] = message
        if seq == cursor + 1:
            async for event in self.drain(conversation_id, force=False):
                yield event
        elif self.gap_syncs.get(conversation_id, 0) == 0:
            self.gap_syncs[conversation_id] = 1
            await self.sync([conversation_id])

    async def drain(self, conversation_id: int, *, force: bool) -> AsyncIterator:
        """Hand out held messages that follow the cursor (past a gap too if ``force``)."""
        held = self.held.get(conversation_id, {})
        while held:
            cursor = self.client.cursor(conversation_id) or 0
            for seq in [s for s in held if s <= cursor]:
                del held[seq]
            if not held:
                break
            nxt = min(held)
            if nxt != cursor + 1 and not force:
                break
            message = held.pop(nxt)
            event = await self.client.open(message)
            yield event
            # Advanced only once the consumer is done with it: a crash in between
            # shows the message again next time rather than never. A message of my own
            # (a bot's own reply coming back) is saved with the next save: one state
            # file write (an fsync) less per answer; after a crash it is opened again.
            self.client.advance(conversation_id, nxt, save=not getattr(event, "own", False))
        if not held:
            self.held.pop(conversation_id, None)
            self.gap_syncs.pop(conversation_id, None)

    async def on_synced(self, frame: dict) -> None:
        has_more = frame.get("has_more") or {}
        again = [int(c) for c, more in has_more.items() if more and c.isdigit()]
        for conversation_id, held in self.held.items():
            cursor = self.client.cursor(conversation_id) or 0
            if held and min(held) > cursor + 1 and conversation_id not in again:
                tries = self.gap_syncs.get(conversation_id, 0)
                if tries >= MAX_GAP_SYNCS:
                    logger.warning(
                        "conversation %s: gap after seq %s; skipped", conversation_id, cursor
                    )
                    self.client.advance(conversation_id, min(held) - 1)
                else:
                    self.gap_syncs[conversation_id] = tries + 1
                    again.append(conversation_id)
        if again:
            await self.sync(again)


def _fields(frame: dict, **types: type) -> bool:
    """Whether ``frame`` has these fields of these exact types (bool is not int)."""
    return all(type(frame.get(name)) is kind for name, kind in types.items())
