"""One device of one user: seal and send, open and check, keep per-conversation cursors.

``ChatClient`` joins a logged-in ``ChatSession``, the device's unlocked keys and a
``DeviceDirectory``. It sends over HTTP (idempotent by ``client_msg_id``) and, through
``events()``/``messages()``, listens on the WebSocket with reconnects (see ``listener``).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from . import keystore, protocol
from .directory import DeviceDirectory, DeviceSetChange, parse_time
from .errors import ChatApiError, ChatError, UntrustedDevice
from .events import OK, REPLAY, UNVERIFIED, IncomingMessage
from .session import ChatSession
from .ws import ChatSocket


class ChatClient:
    """A device's view of the chat.

    ``cursors`` (conversation id -> last seq handled) and ``known_devices`` (username ->
    signing kids last seen) may come from a previous run; ``on_cursor(conversation, seq)`` is
    called after each message is handled, so a caller can persist them. Device-set
    changes collect in ``notices`` (see ``pop_notices``) and are yielded by ``events()``.
    """

    def __init__(
        self,
        session: ChatSession,
        keys: protocol.DeviceKeys,
        *,
        user_id: int,
        username: str,
        device_id: int,
        cursors: dict[int, int] | None = None,
        known_devices: dict[str, list[str]] | None = None,
        on_cursor: Callable[[int, int], None] | None = None,
    ) -> None:
        self.session = session
        self.keys = keys
        self.user_id = user_id
        self.username = username
        self.device_id = device_id
        self.cursors: dict[int, int] = {int(k): int(v) for k, v in (cursors or {}).items()}
        self.on_cursor = on_cursor
        self.notices: list[DeviceSetChange] = []
        self.directory = DeviceDirectory(
            session, known=known_devices, on_change=self.notices.append
        )
        self._shown: dict[tuple[int, int, str], int] = {}  # (conv, sender, cmid) -> id

    @classmethod
    async def unlock(
        cls, session: ChatSession, record: dict, passphrase: str, **options
    ) -> ChatClient:
        """A client from a §3 keystore record (``WrongPassphrase``/``KeystoreError`` if it
        does not open)."""
        keys = await asyncio.to_thread(keystore.unlock_keystore, record, passphrase)
        return cls(
            session,
            keys,
            user_id=record["user_id"],
            username=record["username"],
            device_id=record["device_id"],
            **options,
        )

    async def check_login(self) -> dict:
        """The session's user; ``ChatApiError('not_authenticated')`` if logged out and
        ``ChatError`` if logged in as someone other than the key file's user."""
        user = await self.session.get_session()
        if user is None:
            raise ChatApiError(401, "not_authenticated", "not logged in")
        if user["id"] != self.user_id:
            raise ChatError(
                f"logged in as {user['username']!r} but the key file is {self.username!r}'s"
            )
        return user

    def pop_notices(self) -> list[DeviceSetChange]:
        """Device-set changes seen since the last call."""
        notices, self.notices[:] = list(self.notices), []
        return notices

    # --- conversations -----------------------------------------------------------------

    async def conversation(self, target: int | str) -> dict:
        """A conversation by id (int) or the direct one with a username (str; made if
        missing). Unknown ids are ``ChatApiError('not_found')``."""
        if isinstance(target, int):
            for conversation in await self.session.conversations():
                if conversation["id"] == target:
                    return conversation
            raise ChatApiError(404, "not_found", f"no conversation {target} of yours")
        return await self.session.create_conversation([target])

    # --- sending -----------------------------------------------------------------------

    async def _recipient_keys(self, conversation: dict, *, refresh: bool) -> dict:
        usernames = {member["username"] for member in conversation["members"]}
        usernames.add(self.username)
        recipients = {}
        for username in sorted(usernames):
            for device in await self.directory.devices_of(username, refresh=refresh):
                recipients[device.enc_kid] = device.enc_public
        if self.keys.enc_kid not in recipients:
            raise ChatError("this device is not an active device of yours (revoked?)")
        return recipients

    async def seal(
        self, conversation: dict, content: dict, client_msg_id: str, *, refresh_devices: bool
    ) -> dict:
        """The §2 envelope of ``content`` for every active device of every current member."""
        recipients = await self._recipient_keys(conversation, refresh=refresh_devices)
        return await asyncio.to_thread(
            protocol.seal_envelope,
            content,
            conversation_id=conversation["id"],
            sender_id=self.user_id,
            client_msg_id=client_msg_id,
            sender_keys=self.keys,
            recipient_keys=recipients,
        )

    async def send(
        self, target: int | str | dict, content: dict, *, client_msg_id: str | None = None
    ) -> dict:
        """Seal ``content`` for every active device of every member and store it.

        ``target`` is a conversation dict, id or username. On ``stale_devices`` the
        members and their devices are fetched again and the message re-sealed once (same
        ``client_msg_id``). Returns the stored message of §4.
        """
        conversation = target if isinstance(target, dict) else await self.conversation(target)
        client_msg_id = client_msg_id or protocol.new_client_msg_id()
        for attempt in range(2):
            envelope = await self.seal(
                conversation, content, client_msg_id, refresh_devices=attempt > 0
            )
            try:
                return await self.session.send_message(conversation["id"], client_msg_id, envelope)
            except ChatApiError as error:
                if error.code != "stale_devices" or attempt:
                    raise
                conversation = await self.conversation(conversation["id"])
        raise AssertionError("unreachable")

    async def send_on_socket(
        self,
        socket: ChatSocket,
        target: int | str | dict,
        content: dict,
        *,
        client_msg_id: str | None = None,
        timeout: float = 30.0,
    ) -> tuple[dict, list[dict]]:
        """Like ``send`` but with the WebSocket ``send`` frame on an open ``socket`` of this
        device (for tests and tools that drive a socket themselves).

        Returns the ``ack`` frame and the other frames read while waiting for it. An
        ``error`` frame for this message raises ``ChatApiError`` (status 0), after one
        re-seal on ``stale_devices``.
        """
        conversation = target if isinstance(target, dict) else await self.conversation(target)
        client_msg_id = client_msg_id or protocol.new_client_msg_id()
        others: list[dict] = []
        for attempt in range(2):
            envelope = await self.seal(
                conversation, content, client_msg_id, refresh_devices=attempt > 0
            )
            frame = {
                "type": "send",
                "conversation": conversation["id"],
                "client_msg_id": client_msg_id,
                "envelope": envelope,
            }
            await socket.send_frame(frame)
            while True:
                reply = await socket.recv_frame(timeout=timeout)
                if (
                    reply.get("type") in ("ack", "error")
                    and reply.get("client_msg_id") == client_msg_id
                ):
                    break
                others.append(reply)
            if reply["type"] == "ack":
                return reply, others
            extra = {k: v for k, v in reply.items() if k not in ("type", "code", "detail")}
            error = ChatApiError(0, str(reply.get("code")), str(reply.get("detail", "")), extra)
            if error.code != "stale_devices" or attempt:
                raise error
            conversation = await self.conversation(conversation["id"])
        raise AssertionError("unreachable")

    async def send_text(self, target: int | str | dict, text: str) -> dict:
        """Send ``{"type":"text","text":text}`` (at most 16,000 characters)."""
        return await self.send(target, protocol.text_message(text))

    # --- receiving ---------------------------------------------------------------------

    async def open(self, message: dict) -> IncomingMessage:
        """Open and check one stored message of §4; never raises for a bad message.

        A message that fails any check comes back ``"unverified"`` with the reason; a
        second message with a shown (sender, client_msg_id) under another id comes back
        ``"replay"``. ``ServerUnreachable`` and transient API errors (5xx, 429) propagate:
        the message was not judged and should be opened again later.
        """
        base = {
            "id": message.get("id"),
            "conversation": message.get("conversation"),
            "seq": message.get("seq"),
            "sender_id": message.get("sender_id"),
            "sender": message.get("sender"),
            "sender_device": message.get("sender_device"),
            "client_msg_id": message.get("client_msg_id"),
            "created": message.get("created"),
            "own": message.get("sender_id") == self.user_id,
        }
        key = (base["conversation"], base["sender_id"], base["client_msg_id"])
        try:
            envelope = message["envelope"]
            signer = await self.directory.signer(
                envelope["sig_kid"], message["sender_id"], parse_time(message["created"])
            )
            if signer.id != message["sender_device"]:
                raise UntrustedDevice("sender_device is not the signing device")
            content = await asyncio.to_thread(
                protocol.open_envelope,
                envelope,
                conversation_id=message["conversation"],
                sender_id=message["sender_id"],
                client_msg_id=message["client_msg_id"],
                device_keys=self.keys,
                sig_public=signer.sig_public,
            )
        except (UntrustedDevice, protocol.ProtocolError, KeyError, TypeError, ValueError) as exc:
            return IncomingMessage(**base, status=UNVERIFIED, error=_reason(exc))
        except ChatApiError as exc:
            if exc.transient:
                raise
            return IncomingMessage(**base, status=UNVERIFIED, error=f"key lookup failed: {exc}")
        first = self._shown.setdefault(key, base["id"])
        if first != base["id"]:
            return IncomingMessage(**base, status=REPLAY, replay_of=first)
        return IncomingMessage(**base, status=OK, content=content)

    async def history(
        self, conversation_id: int, *, limit: int = 50, before_seq: int | None = None
    ) -> tuple[list[IncomingMessage], bool]:
        """A page of opened history (ascending seq) and whether older messages exist."""
        page = await self.session.history(conversation_id, before_seq=before_seq, limit=limit)
        return [await self.open(m) for m in page["messages"]], page["has_more"]

    def advance(self, conversation_id: int, seq: int) -> None:
        """Record ``seq`` as handled in ``conversation_id`` and tell ``on_cursor``."""
        self.cursors[conversation_id] = seq
        if self.on_cursor is not None:
            self.on_cursor(conversation_id, seq)

    def events(self, *, since: str = "cursor") -> AsyncIterator:
        """Listen until cancelled: yields ``IncomingMessage``, ``DeviceSetChange``,
        ``ConversationChanged``, ``ServerNotice`` and ``Status`` (see ``listener.listen``)."""
        from .listener import listen

        return listen(self, since=since)

    async def messages(self, *, include_own: bool = False, since: str = "cursor"):
        """Only the incoming messages of ``events()`` (own ones too if ``include_own``)."""
        async for event in self.events(since=since):
            if isinstance(event, IncomingMessage) and (include_own or not event.own):
                yield event


def _reason(exc: Exception) -> str:
    if isinstance(exc, protocol.ProtocolError):
        return exc.detail or exc.code
    if isinstance(exc, KeyError):
        return f"malformed message (no {exc})"
    return str(exc) or type(exc).__name__


async def connect(
    server: str,
    *,
    username: str,
    password: str,
    key_file: str | os.PathLike,
    passphrase: str,
    **options,
) -> ChatClient:
    """Log in to ``server`` and unlock ``key_file`` (a §3 keystore, e.g. the CLI's or the
    browser's export): the few lines a bot needs before ``messages()`` and ``send_text``."""
    session = ChatSession(server)
    await session.login(username, password)
    record = json.loads(Path(key_file).read_text(encoding="utf-8"))
    client = await ChatClient.unlock(session, record, passphrase, **options)
    await client.check_login()
    return client
