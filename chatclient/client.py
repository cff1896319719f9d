"""One device of one user: seal and send, open and judge, verify members and identities.

``ChatClient`` joins a logged-in ``ChatSession``, the device's unlocked keys and its
``StateStore`` (cursors, counters, ledgers, rosters, trust). It sends over HTTP
(idempotent by ``client_msg_id``) or on a socket, and through ``events()``/``messages()``
listens on the WebSocket with reconnects (see ``listener``). Identity, linking and group
operations are methods too (see docs/client.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from . import contacts, keystore, ordering, protocol
from .config import write_json
from .directory import Directory
from .errors import (
    ChatApiError,
    ChatError,
    DeviceRevoked,
    MessageTooLong,
    RateLimited,
    SendingPaused,
    UntrustedDevice,
    UntrustedIdentity,
    api_error,
)
from .events import (
    DELETED,
    OK,
    OUT_OF_ORDER,
    REPLAYED,
    UNVERIFIED,
    Conversation,
    IncomingMessage,
    MessageReflagged,
    Rollback,
)
from .handlers import (
    C,
    E,
    Handlers,
    M,
)
from .membership import MembershipBook
from .objects import Message
from .session import ChatSession
from .state import StateStore
from .trust import TrustBook
from .ws import ChatSocket

logger = logging.getLogger(__name__)

MAX_SEND_ATTEMPTS = 6
# A send refused with rate_limited is sent again (the same envelope) after 0.5, 1, 2, 4,
# 8 s (or the server's retry_after); the sixth refusal reaches the caller.
RATE_LIMIT_RETRIES = 5
RATE_LIMIT_FIRST_DELAY = 0.5
RATE_LIMIT_MAX_DELAY = 8.0
# Seconds a send on the listening socket waits for its ack before it goes over HTTP.
SOCKET_ACK_WAIT = 15.0
# After the socket refused a send as rate_limited, sends use HTTP for this long (refused
# frames pile up towards the server's flood close, 4429).
SOCKET_REST_AFTER_LIMIT = 2.0
VERDICT_STATUS = {
    ordering.OK: OK,
    ordering.REPLAYED: REPLAYED,
    ordering.OUT_OF_ORDER: OUT_OF_ORDER,
}


@dataclass(frozen=True)
class SafetyNumber:
    """The safety number of this user and ``username`` (§7.4): 60 digits in 12 groups of
    5 for the accepted identity; ``pending`` is the number of an identity change waiting
    for acceptance (else None)."""

    username: str
    user_id: int
    number: str | None
    verified: bool
    status: str
    pending: str | None


class ChatClient:
    """A device's view of the chat.

    ``state`` is the device's ``StateStore`` (in memory unless given; ``connect`` and the
    CLI keep it in a file). Notices found on the way (``TrustNotice``,
    ``RosterChange``, ``ConversationTampered``, ``Rollback``) collect in ``notices``
    (see ``pop_notices``) and are yielded by ``events()``.
    """

    def __init__(
        self,
        session: ChatSession,
        keys: protocol.DeviceKeys,
        *,
        user_id: int,
        username: str,
        device_id: int,
        state: StateStore | None = None,
    ) -> None:
        self.session = session
        self.user_id = user_id
        self.username = username
        self.device_id = device_id
        self.state = state or StateStore(device_id=device_id)
        self.notices: list = []
        self.trust = TrustBook(self.state, user_id=user_id, username=username, id_kid=keys.id_kid)
        self.state.put("names", user_id, username)
        self.directory = Directory(session, self.trust, on_notice=self.notices.append)
        self.members = MembershipBook(
            self.state, session, self.directory, user_id=user_id, keys=keys
        )
        self._keys = keys
        self.handlers = Handlers()
        self._known: dict[int, dict] = {}  # conversation id -> the object last observed
        self._direct: dict[str, int] = {}  # username -> id of my direct conversation
        self.socket: ChatSocket | None = None  # the listening socket, while listening
        self._socket_sends_from = 0.0  # loop time from which sends may use that socket

    @property
    def keys(self) -> protocol.DeviceKeys:
        return self._keys

    @keys.setter
    def keys(self, keys: protocol.DeviceKeys) -> None:
        """New keys of this same device (after an upgrade or linking: the identity)."""
        self._keys = keys
        self.members.keys = keys
        self.trust.set_own_identity(keys.id_kid)

    @classmethod
    async def unlock(
        cls, session: ChatSession, record: dict, passphrase: str, **options
    ) -> ChatClient:
        """A client from a §3 keystore record, v2 or v1 (``WrongPassphrase`` /
        ``KeystoreError`` if it does not open). A v1 device must ``upgrade`` or be linked
        before it can send."""
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

    async def check_device(self) -> dict:
        """This device's record on the server; ``DeviceRevoked`` if it is revoked or not
        among this account's devices (the server would refuse its socket with 4403)."""
        for device in await self.session.my_devices():
            if device.get("id") == self.device_id:
                if device.get("revoked") is None:
                    return device
                break
        raise DeviceRevoked(self.device_id, self.username)

    async def close(self) -> None:
        """Save the device's state and close the HTTP connections; the client is not to be
        used afterwards. (Listening ends when the ``events()``/``messages()`` loop is left
        or cancelled.)"""
        self.save()
        aclose = getattr(self.session, "aclose", None)  # test doubles may have none
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def pop_notices(self) -> list:
        """Notices seen since the last call."""
        notices, self.notices[:] = list(self.notices), []
        return notices

    def save(self) -> None:
        """Write the device's state (merged with other processes' changes)."""
        self.state.save()

    # --- conversations -----------------------------------------------------------------

    async def observe(self, conversation: dict, *, shown: int | None = None) -> dict:
        """Take in a conversation object from the server: verify its members (§8); notices
        are queued. Returns it.

        ``shown`` is the highest seq this device had judged there *before* the object was
        fetched: a ``last_seq`` below it is a rollback (§9). (Frames and objects fetched
        while messages are being judged carry an older ``last_seq``: they are not
        compared.)"""
        self.notices.extend(await self.members.check(conversation))
        last_seq, cid = conversation.get("last_seq"), conversation["id"]
        self._known[cid] = conversation
        if isinstance(last_seq, int) and shown is not None and last_seq < shown:
            self._rollback(cid, last_seq + 1, "the server shows fewer messages than before")
        return conversation

    def _shown_in(self, cid: int) -> int | None:
        """The highest seq judged so far in a conversation."""
        entries = self._ledger(cid).entries
        return max((entry.seq for entry in entries.values()), default=None)

    def _shown(self) -> dict[int, int | None]:
        return {int(key): self._shown_in(int(key)) for key in self.state.keys("ledgers")}

    async def conversations(self) -> list[dict]:
        """My conversations, fetched and each verified (``observe``)."""
        shown = self._shown()
        listed = await self.session.conversations()
        return [await self.observe(c, shown=shown.get(c["id"])) for c in listed]

    async def conversation(self, target: int | str | dict) -> dict:
        """A conversation by id (int), or the direct one with a username (str; made if
        missing), fetched and verified. Unknown ids are ``ChatApiError('not_found')``."""
        if isinstance(target, dict):
            target = target["id"]
        if isinstance(target, int):
            shown = self._shown_in(target)
            for conversation in await self.session.conversations():
                if conversation["id"] == target:
                    return await self.observe(conversation, shown=shown)
            raise ChatApiError(404, "not_found", f"no conversation {target} of yours")
        shown_all = self._shown()
        conversation = await self.session.create_direct(target)
        if conversation.get("kind") == "direct":
            self._direct[target] = conversation["id"]
        return await self.observe(conversation, shown=shown_all.get(conversation["id"]))

    async def _for_send(self, target: int | str | dict) -> dict:
        """The conversation to send to. While this client listens (``events``, ``run``),
        the object last observed: the listener verified every conversation when it
        connected and verifies each ``conversation`` frame, so a send does not fetch the
        whole list each time (the server's ``stale_roster`` brings a fresh one when the
        roster moved). Otherwise the list is fetched and verified first, so a one-off
        send sees a tampered conversation before it seals (either way the envelope is
        sealed only for the pinned pair or the verified roster's members, §8)."""
        if isinstance(target, dict):
            target = target["id"]
        if self.socket is None:
            return await self.conversation(target)
        if isinstance(target, str) and target in self._direct:
            target = self._direct[target]
        if isinstance(target, int) and target in self._known:
            return self._known[target]
        return await self.conversation(target)

    async def list_conversations(self) -> list[Conversation]:
        """My conversations, fetched, verified and typed (``Conversation``, with
        ``request`` true for a message request)."""
        return [Conversation.from_json(c) for c in await self.conversations()]

    async def get_conversation(self, target: int | str) -> Conversation:
        """One conversation (by id, or the direct one with a username), typed."""
        return Conversation.from_json(await self.conversation(target))

    async def _user_id(self, username: str) -> int:
        return (await self.directory.user(username)).user_id

    def _require_identity(self) -> None:
        if self.keys.id_private is None:
            raise ChatError(
                "this device has no identity key yet: upgrade it (`chat-client device "
                "upgrade`) or link it"
            )

    async def create_group(self, title: str | None, usernames: list[str]) -> dict:
        """A new group of these people and me (owner), from a signed record 0."""
        self._require_identity()
        ids = [await self._user_id(name) for name in usernames]
        conversation, events = await self.members.create_group(title, ids)
        self.notices.extend(events)
        self.save()
        return conversation

    async def _change(self, target: int | dict, op: str, usernames=(), title=None) -> dict:
        self._require_identity()
        conversation = await self.conversation(target)
        ids = [await self._user_id(name) for name in usernames]
        updated, events = await self.members.change(conversation, op, ids, title)
        self.notices.extend(events)
        self.save()
        return updated

    async def add_members(self, target: int | dict, usernames: list[str]) -> dict:
        """The owner adds people to a group (a signed ``add`` record)."""
        return await self._change(target, "add", usernames)

    async def remove_members(self, target: int | dict, usernames: list[str]) -> dict:
        """The owner removes members from a group (a signed ``remove`` record)."""
        return await self._change(target, "remove", usernames)

    async def leave(self, target: int | dict) -> dict:
        """Leave a group (a signed ``leave`` record)."""
        return await self._change(target, "leave", [self.username])

    async def set_title(self, target: int | dict, title: str) -> dict:
        """Retitle a group (a signed ``title`` record)."""
        return await self._change(target, "title", (), title)

    # --- message requests and blocks (PROTOCOL §6; see contacts) -------------------------

    async def accept_request(self, target: int | dict) -> dict:
        """Accept a message request; the conversation object afterwards."""
        return await contacts.accept(self, target)

    async def decline_request(self, target: int | dict) -> None:
        """Delete a pending message request on all my devices, until its starter writes again."""
        await contacts.decline(self, target)

    async def block(self, username: str) -> None:
        """Block a user: no direct conversation or group with me from them, no presence."""
        await contacts.block(self, username)

    async def unblock(self, username: str) -> None:
        """Lift my block of a user."""
        await contacts.unblock(self, username)

    # --- sending -----------------------------------------------------------------------

    async def _recipients(self, cid: int, members: set[int], *, refresh: bool) -> dict:
        usernames = []
        for user_id in sorted(members):
            name = self.username if user_id == self.user_id else self.state.get("names", user_id)
            if not name:
                raise ChatError(f"conversation {cid}: member {user_id} has no known name")
            usernames.append(name)
        result = await self.directory.recipients_of(usernames, refresh=refresh)
        if result.problems:
            raise SendingPaused(cid, result.problems)
        if self.keys.enc_kid not in result.keys:
            raise ChatError("this device is not an active certified device of yours (revoked?)")
        return result.keys

    async def _deliver(
        self,
        target: int | str | dict,
        content: dict,
        client_msg_id: str | None,
        transmit: Callable[[int, str, dict], Awaitable],
    ):
        """Seal and ``transmit`` until stored: ``stale_devices`` fetches the devices again,
        ``stale_counter`` takes a higher ``n``, ``stale_roster`` verifies the new roster,
        ``rate_limited`` waits and sends the same envelope again (``_paced``); the same
        ``client_msg_id`` (and ``n``, but after ``stale_counter``) each time."""
        conversation = await self._for_send(target)
        cid = conversation["id"]
        client_msg_id = client_msg_id or protocol.new_client_msg_id()
        n, refresh = None, False
        for _attempt in range(MAX_SEND_ATTEMPTS):
            members, head = self.members.send_plan(conversation)
            recipients = await self._recipients(cid, members, refresh=refresh)
            if n is None:
                n = self.state.allocate_counter(cid)
            envelope = await asyncio.to_thread(
                protocol.seal_envelope,
                content,
                conversation_id=cid,
                sender_id=self.user_id,
                client_msg_id=client_msg_id,
                n=n,
                head=head,
                sender_keys=self.keys,
                recipient_keys=recipients,
            )
            try:
                return await _paced(transmit, cid, client_msg_id, envelope)
            except ChatApiError as error:
                refresh = False
                if error.code == "stale_devices":
                    refresh = True
                elif error.code == "stale_counter":
                    n = self.state.allocate_counter(cid, above=_int(error.extra.get("n")))
                elif error.code == "stale_roster":
                    conversation = await self.conversation(cid)
                else:
                    raise
        raise ChatError("the conversation kept changing while sending; try again")

    async def send(
        self,
        target: int | str | dict,
        content: dict,
        *,
        client_msg_id: str | None = None,
        blobs: list[str] | None = None,
    ) -> dict:
        """Seal ``content`` for the certified devices of the conversation's verified
        members and store it (on the listening socket while listening, else over HTTP);
        returns the stored message of §4.

        ``target`` is a conversation dict, id or username; ``blobs`` names my uploaded,
        unsent blobs (§10.2). Raises ``SendingPaused`` (an identity change to accept, a
        device without a valid cert), ``TamperedConversation``, or ``ChatApiError``.
        """

        async def transmit(cid: int, msg_id: str, envelope: dict) -> dict:
            stored = await self._send_on_listening_socket(cid, msg_id, envelope, blobs)
            if stored is not None:
                return stored
            return await self.session.send_message(cid, msg_id, envelope, blobs)

        return await self._deliver(target, content, client_msg_id, transmit)

    async def _send_on_listening_socket(
        self, cid: int, msg_id: str, envelope: dict, blobs: list[str] | None
    ) -> dict | None:
        """While listening, a send goes as a ``send`` frame on the listening socket: the
        server stores it in its group commit, without a request of its own (a third of the
        server's CPU per message, measured against ``POST …/messages/``). Returns the stored
        message (§4) built from the ``ack``; None when HTTP should send it: not listening,
        the socket ended or did not answer in time (the same ``client_msg_id`` over HTTP
        is stored once), or any refusal, which HTTP then gives as the endpoint does
        (status, ``retry_after``)."""
        socket = self.socket
        loop = asyncio.get_running_loop()
        if socket is None or not socket.reading or loop.time() < self._socket_sends_from:
            return None
        frame: dict[str, Any] = {"type": "send", "conversation": cid, "client_msg_id": msg_id}
        if blobs:
            frame["blobs"] = list(blobs)
        try:
            reply = await socket.exchange({**frame, "envelope": envelope}, msg_id, SOCKET_ACK_WAIT)
        except (ChatError, OSError, TimeoutError):  # the socket ended or stayed silent
            return None
        if reply.get("type") != "ack" or not isinstance(reply.get("id"), int):
            if reply.get("code") == "rate_limited":  # the socket's frame budget: rest it
                self._socket_sends_from = loop.time() + SOCKET_REST_AFTER_LIMIT
            return None
        return {
            "id": reply["id"],
            "conversation": cid,
            "seq": reply.get("seq"),
            "sender_id": self.user_id,
            "sender": self.username,
            "sender_device": self.device_id,
            "client_msg_id": msg_id,
            "created": reply.get("created"),
            "envelope": envelope,
            "blobs": list(blobs or []),
            "deleted": False,
        }

    async def send_on_socket(
        self,
        socket: ChatSocket,
        target: int | str | dict,
        content: dict,
        *,
        client_msg_id: str | None = None,
        timeout: float = 30.0,
        blobs: list[str] | None = None,
    ) -> tuple[dict, list[dict]]:
        """Like ``send`` but with the WebSocket ``send`` frame on an open ``socket`` of this
        device. Returns the ``ack`` frame and the other frames read while waiting for it;
        an ``error`` frame for this message raises ``ChatApiError`` (status 0) unless a
        re-seal handles it; ``rate_limited`` sends it again after a pause (0.5 s doubling,
        five times) before ``RateLimited`` is raised."""
        others: list[dict] = []

        async def transmit(cid: int, msg_id: str, envelope: dict) -> dict:
            frame = {"type": "send", "conversation": cid, "client_msg_id": msg_id}
            if blobs:
                frame["blobs"] = list(blobs)
            await socket.send_frame({**frame, "envelope": envelope})
            while True:
                reply = await socket.recv_frame(timeout=timeout)
                if reply.get("type") in ("ack", "error") and reply.get("client_msg_id") == msg_id:
                    break
                others.append(reply)
            if reply["type"] == "ack":
                return reply
            extra = {k: v for k, v in reply.items() if k not in ("type", "code", "detail")}
            raise api_error(0, str(reply.get("code")), str(reply.get("detail", "")), extra)

        ack = await self._deliver(target, content, client_msg_id, transmit)
        return ack, others

    async def members_without_devices(self, conversation_id: int) -> list[str]:
        """The names of the conversation's other members (as last verified) who have no
        device this device may encrypt to: what is sent there they cannot read. Uses the
        devices fetched for the last send (fetched now if none were)."""
        view = self.members.view(conversation_id)
        if view.kind == "direct" and view.pair is not None:
            member_ids = set(view.pair)
        elif view.state is not None:
            member_ids = set(view.state.members)
        else:
            return []
        names = []
        for user_id in sorted(member_ids - {self.user_id}):
            name = self.state.get("names", user_id)
            if name and not self.directory.usable(await self.directory.user(name)):
                names.append(name)
        return names

    async def send_text(self, target: int | str | dict, text: str) -> dict:
        """Send ``{"type":"text","text":text}``: at most 16,000 characters (code points),
        else ``MessageTooLong`` before anything is fetched or encrypted."""
        if isinstance(text, str) and len(text) > protocol.MAX_TEXT_CHARS:
            raise MessageTooLong(len(text), protocol.MAX_TEXT_CHARS)
        return await self.send(target, protocol.text_message(text))

    # --- attachments (§10.2) -------------------------------------------------------------

    async def send_file(
        self,
        target: int | str | dict,
        source: bytes | str | os.PathLike,
        *,
        name: str | None = None,
        mime: str | None = None,
        caption: str | None = None,
        reply_to: dict | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict:
        """Send a file (a path, or bytes) as an encrypted attachment; returns the stored
        message.

        The file is read once: encrypted chunk by chunk straight into the upload (never
        held whole) and hashed on the way; then the ``file`` message naming the blob goes
        out like ``send``. ``name`` defaults to the path's name (cleaned), ``mime`` to the
        type the name suggests; PNG, JPEG, GIF and WebP images get ``width``, ``height``
        and a JPEG thumbnail (Pillow). ``caption`` is the message's ``text``.
        ``progress(done, total)`` gets blob bytes, from a worker thread. Over 100 MiB is
        ``ProtocolError('too_large')``, before anything is uploaded.
        """
        from .files import send_file

        return await send_file(
            self,
            target,
            source,
            name=name,
            mime=mime,
            caption=caption,
            reply_to=reply_to,
            progress=progress,
        )

    async def download(
        self,
        message: IncomingMessage | dict,
        dest: str | os.PathLike = ".",
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> Path:
        """Fetch, decrypt and check a file message's attachment; returns where it was
        saved.

        ``message`` is an opened ``IncomingMessage`` or a stored message (opened here).
        ``dest`` is a directory (the file gets its cleaned name there, as ``name (1).ext``
        etc. rather than overwrite anything) or a file path (replaced). The bytes stream
        into a temporary file beside it that becomes the file only after every §10.2 check
        passed; otherwise nothing is left and ``FileRefused`` (``code``: ``bad_length``,
        ``bad_chunk``, ``bad_last``, ``bad_padding``, ``bad_hash``, ``bad_meta``) is
        raised. ``ChatError`` for a message that is not a genuine file message,
        ``ChatApiError('not_found')`` when the server does not give the blob.
        ``progress(done, total)`` gets blob bytes, from a worker thread.
        """
        from .files import download

        return await download(self, message, dest, progress=progress)

    async def find_message(self, message_id: int) -> IncomingMessage | None:
        """The message with this id in one of my conversations, opened; None if none."""
        from .files import find_message

        found = await find_message(self, message_id)
        return None if found is None else await self.open(found)

    # --- receiving ---------------------------------------------------------------------

    def _ledger(self, cid: int) -> ordering.Ledger:
        return self.state.live("ledgers", cid, ordering.Ledger.from_json, ordering.Ledger)

    def seq_of(self, cid: int, ref: dict) -> int | None:
        """The seq of the message a §10.1 reference names, among those this device judged
        ok in the conversation (None if none)."""
        for entry in self._ledger(cid).entries.values():
            if (
                entry.verdict == ordering.OK
                and entry.sender_id == ref.get("sender_id")
                and entry.client_msg_id == ref.get("client_msg_id")
            ):
                return entry.seq
        return None

    def cursor(self, cid: int) -> int | None:
        """The last seq handled in a conversation (None: never looked at)."""
        return self.state.cursor(cid)

    @property
    def cursors(self) -> dict[int, int]:
        return {int(k): self.state.get("cursors", k) for k in self.state.keys("cursors")}

    def advance(self, cid: int, seq: int, *, save: bool = True) -> None:
        """Record ``seq`` as handled in ``cid`` and save the state (``save=False``: with
        the next save)."""
        self.state.set_cursor(cid, seq)
        if save:
            self.save()

    def forget_cursor(self, cid: int) -> None:
        """Stop following a conversation (not a member any more)."""
        self.state.data["cursors"].pop(str(cid), None)

    def _rollback(self, cid: int, seq: int, detail: str) -> None:
        """Forget what was judged from ``seq`` on and move the cursor back (§9)."""
        self._ledger(cid).forget_from(seq)
        self.state.changed("ledgers", cid, force=True)
        cursor = self.state.cursor(cid)
        if cursor is not None and cursor >= seq:
            self.state.set_cursor(cid, seq - 1, force=True)
        self.notices.append(Rollback(cid, seq, detail))

    async def open(self, message: dict) -> Message:
        """Open, check and judge one stored message of §4; never raises for a bad message.

        A message that fails any check comes back ``"unverified"`` with the reason; §9's
        verdicts give ``"replayed"`` and ``"out_of_order"``. A rollback (another message
        at a seq already shown) is noted, forgotten from there and judged afresh.
        ``ServerUnreachable`` and transient API errors (5xx, 429) propagate: the message
        was not judged and should be opened again later.
        """
        envelope = message.get("envelope")
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
            "v": envelope.get("v") if isinstance(envelope, dict) else None,
            "blobs": tuple(b for b in message.get("blobs") or () if isinstance(b, str)),
        }
        if message.get("deleted") or envelope is None:
            return Message(**base, status=DELETED, client=self)
        try:
            signer = await self.directory.sender_key(message)
            content = await asyncio.to_thread(
                protocol.open_envelope,
                envelope,
                conversation_id=message["conversation"],
                sender_id=message["sender_id"],
                client_msg_id=message["client_msg_id"],
                device_keys=self.keys,
                sig_public=signer.device.sig_public,
            )
            if envelope["v"] == 2:
                events, reason = await self.members.check_head(
                    message["conversation"], message["sender_id"], envelope["head"]
                )
                self.notices.extend(events)
                if reason is not None:
                    raise UntrustedDevice(reason)
        except (
            UntrustedDevice,
            UntrustedIdentity,
            protocol.ProtocolError,
            KeyError,
            TypeError,
            ValueError,
        ) as exc:
            return Message(**base, status=UNVERIFIED, error=_reason(exc), client=self)
        except ChatApiError as exc:
            if exc.transient:
                raise
            error = f"key lookup failed: {exc}"
            return Message(**base, status=UNVERIFIED, error=error, client=self)
        verdict = self._judge(message, envelope)
        status = VERDICT_STATUS[verdict]
        if status != OK:
            return Message(**base, status=status, replay_of=self._first(message), client=self)
        return Message(**base, status=OK, content=content, note=signer.note, client=self)

    def _judge(self, message: dict, envelope: dict) -> str:
        cid = message["conversation"]
        fields = {
            "id": message["id"],
            "seq": message["seq"],
            "sender_id": message["sender_id"],
            "client_msg_id": message["client_msg_id"],
            "sig_kid": envelope["sig_kid"],
            "v": envelope["v"],
            "n": envelope.get("n"),
        }
        ledger = self._ledger(cid)
        prior = ledger.entries.get(message["id"])
        verdict = ledger.judge(**fields)
        if verdict == ordering.ROLLBACK:
            # from the lower of the two seqs: a restored server hands out the lost
            # messages' ids again, possibly at a higher seq than before
            seq = min(message["seq"], prior.seq) if prior is not None else message["seq"]
            self._rollback(cid, seq, "another message now holds a seq already shown")
            verdict = ledger.judge(**fields)
        for message_id in ledger.take_changed():
            status = VERDICT_STATUS[ledger.verdict_of(message_id)]
            self.notices.append(MessageReflagged(cid, message_id, status))
        self.state.changed("ledgers", cid)
        return verdict

    def _first(self, message: dict) -> int | None:
        """The id of the message shown first with this one's sender and client id."""
        for entry in self._ledger(message["conversation"]).entries.values():
            if (
                entry.verdict == ordering.OK
                and entry.id != message["id"]
                and (entry.sender_id, entry.client_msg_id)
                == (message["sender_id"], message["client_msg_id"])
            ):
                return entry.id
        return None

    async def history(
        self, conversation_id: int, *, limit: int = 50, before_seq: int | None = None
    ) -> tuple[list[Message], bool]:
        """A page of opened history (ascending seq) and whether older messages exist."""
        page = await self.session.history(conversation_id, before_seq=before_seq, limit=limit)
        opened = [await self.open(m) for m in page["messages"]]
        self.save()
        return opened, page["has_more"]

    def events(self, *, since: str = "cursor") -> AsyncIterator:
        """Listen until cancelled: yields ``IncomingMessage``, ``RosterChange``,
        ``TrustNotice``, ``ConversationTampered``, ``Rollback``, ``LinkRequested``,
        ``ConversationChanged``, ``ServerNotice`` and ``Status`` (see ``listener``)."""
        from .listener import listen

        return listen(self, since=since)

    async def messages(
        self, *, include_own: bool = False, since: str = "cursor"
    ) -> AsyncIterator[Message]:
        """Only the incoming messages of ``events()`` (own ones too if ``include_own``)."""
        async for event in self.events(since=since):
            if isinstance(event, Message) and (include_own or not event.own):
                yield event

    # --- the handler layer (see ``handlers``) ------------------------------------------

    def on_message(self, handler: M) -> M:
        """Decorator: ``async def handler(message)`` for each incoming message that no
        command took (not my own)."""
        self.handlers.on_message.append(handler)
        return handler

    def command(self, name: str, *, prefix: str = "/") -> Callable[[C], C]:
        """Decorator: ``async def handler(message, args)`` for texts ``/name args``."""

        def register(handler: C) -> C:
            self.handlers.commands[(prefix, name.lower())] = handler
            return handler

        return register

    def on(self, kind: type) -> Callable[[E], E]:
        """Decorator: ``async def handler(event)`` for events of this type (``Typing``,
        ``ReadMark``, ``Presence``, ``DevicesChanged``, ``TrustNotice``, ``Status`` ...)."""

        def register(handler: E) -> E:
            self.handlers.on_event.append((kind, handler))
            return handler

        return register

    async def run(self, *, since: str = "cursor", include_own: bool = False) -> None:
        """Listen and run the registered handlers until cancelled (see ``handlers``)."""
        from .handlers import run

        await run(self, since=since, include_own=include_own)

    # --- typing and read marks (§5) ----------------------------------------------------

    async def _frame(self, frame: dict, *, echo: Callable[[dict], bool] | None = None) -> None:
        """Send a frame on the listening socket, or on a socket opened for it (waiting
        up to 5 s for the server's ``echo`` of it, so it was handled before closing)."""
        if self.socket is not None:
            try:
                await self.socket.send_frame(frame)
                return
            except ChatError:
                pass  # the listener reconnects; send this one on its own socket
        async with await ChatSocket.open(self.session, self.device_id) as socket:
            await socket.send_frame(frame)
            if echo is None:
                return
            try:
                async with asyncio.timeout(5):
                    while not echo(await socket.recv_frame()):
                        pass
            except TimeoutError:
                logger.info("no echo of %s frame", frame.get("type"))

    async def typing(self, target: int | str | dict) -> None:
        """Tell the conversation's other members that I am typing (the ``typing`` frame)."""
        cid = (await self._for_send(target))["id"]
        await self._frame({"type": "typing", "conversation": cid})

    async def mark_read(self, target: int | str | dict, up_to: int | None = None) -> int:
        """Mark the conversation read up to seq ``up_to`` (default: the last message this
        device handled there, else its ``last_seq``): its ``unread`` count drops and the
        members see a ``read`` frame. Returns the seq marked."""
        conversation = await self._for_send(target)
        cid = conversation["id"]
        if up_to is None:
            up_to = self.cursor(cid) or int(conversation.get("last_seq") or 0)
        frame = {"type": "read", "conversation": cid, "up_to": int(up_to)}

        def echoed(reply: dict) -> bool:
            return reply.get("type") == "read" and reply.get("conversation") == cid

        await self._frame(frame, echo=echoed)
        return int(up_to)

    # --- identities (§7.4) -------------------------------------------------------------

    async def safety_number(self, username: str) -> SafetyNumber:
        """The safety number with ``username`` for her accepted identity (accepted now on
        first use), and the one of a pending identity change."""
        self._require_identity()
        view = await self.directory.user(username, refresh=True)
        contact = self.trust.contact(view.user_id)
        if contact is None:
            raise ChatError(f"{username} has no identity key yet (not upgraded)")

        def number(id_kid: str | None) -> str | None:
            if id_kid is None:
                return None
            digits = protocol.safety_number(self.user_id, self.keys.id_kid, view.user_id, id_kid)
            return protocol.format_safety_number(digits)

        return SafetyNumber(
            username=view.username,
            user_id=view.user_id,
            number=number(contact.id_kid),
            verified=contact.verified,
            status=contact.status,
            pending=number(contact.pending_kid) if contact.pending is not None else None,
        )

    async def mark_verified(self, username: str, verified: bool = True) -> None:
        """Record that the person compared the safety number with ``username`` (or not)."""
        view = await self.directory.user(username, refresh=True)
        self.trust.set_verified(view.user_id, verified)
        self.save()

    async def accept_identity(self, username: str) -> None:
        """Accept ``username``'s identity change: sending to her resumes, her new devices
        are trusted, the new identity is not verified."""
        view = await self.directory.user(username, refresh=True)
        self.trust.accept(view.user_id)
        self.save()

    # --- this device's identity and other devices (§7) --------------------------------

    async def upgrade(
        self,
        passphrase: str,
        *,
        save_record: Callable[[dict], None] | None = None,
        iterations: int | None = None,
    ) -> dict:
        """§7.5 for a v1 device of a user without an identity: make the identity key, hand
        the new v2 keystore record to ``save_record`` (before anything is sent), put the
        identity with the upgrade signature and certify this device. Returns the record.
        ``ChatError`` if the user has an identity already (link this device instead)."""
        from .devices import upgrade_device

        keys, record = await upgrade_device(
            self.session,
            self.keys,
            user_id=self.user_id,
            username=self.username,
            device_id=self.device_id,
            passphrase=passphrase,
            iterations=iterations,
            save_record=save_record,
        )
        self.keys = keys
        self.directory.forget(self.username)
        self.save()
        return record

    async def complete_identity(self) -> bool:
        """Finish an upgrade a crash interrupted (identity put, this device certified);
        a no-op for a device that is in order. Returns whether anything was done."""
        from .devices import complete_identity

        if self.keys.id_private is None:
            return False
        done = await complete_identity(
            self.session, self.keys, user_id=self.user_id, device_id=self.device_id
        )
        if done:
            self.directory.forget(self.username)
        return done

    async def link_requests(self) -> list:
        """My pending link requests, each with the code computed from its kids and this
        device's identity (``linking.PendingRequest``)."""
        from .linking import pending_requests

        self._require_identity()
        return await pending_requests(self)

    async def approve_link(self, request_id: int, *, code: str | None = None) -> dict:
        """Approve a link request (after the person compared the codes; with ``code`` it
        must equal the request's): cert and ``id_wrap`` with this device's trust state.
        Returns the new device."""
        from .linking import approve

        self._require_identity()
        return await approve(self, request_id, code=code)

    async def deny_link(self, request_id: int) -> None:
        """Deny a link request."""
        await self.session.deny_link_request(request_id)

    async def transfer_history(self, device_id: int, *, progress=None) -> int:
        """Give my linked device ``device_id`` the keys of the messages this device can
        read (§7.3), newest first, in batches of at most 500; resumable. ``progress(done,
        total)`` is called as it goes. Returns how many wraps were sent."""
        from .linking import transfer_history

        return await transfer_history(self, device_id, progress=progress)


async def _paced(transmit: Callable[[int, str, dict], Awaitable], cid: int, msg_id: str, envelope):
    """``transmit`` once, and again after a pause each time the server says
    ``rate_limited`` (the same envelope: nothing was stored), at most
    ``RATE_LIMIT_RETRIES`` times; then the ``RateLimited`` reaches the caller."""
    delay = RATE_LIMIT_FIRST_DELAY
    for attempt in range(RATE_LIMIT_RETRIES + 1):
        try:
            return await transmit(cid, msg_id, envelope)
        except RateLimited as error:
            if attempt == RATE_LIMIT_RETRIES:
                raise
            wait = error.retry_after if error.retry_after is not None else delay
            wait = min(wait, RATE_LIMIT_MAX_DELAY)
            logger.info("send %s rate limited; sending again in %.1fs", msg_id, wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, RATE_LIMIT_MAX_DELAY)
    raise AssertionError("unreachable")


def _int(value: object) -> int:
    return value if type(value) is int else 0


def _reason(exc: Exception) -> str:
    if isinstance(exc, protocol.ProtocolError):
        return exc.detail or exc.code
    if isinstance(exc, KeyError):
        return f"malformed message (no {exc})"
    return str(exc) or type(exc).__name__


class _Connecting:
    """What ``connect`` returns: await it for the client, or use it as
    ``async with connect(...) as client:`` to have the client closed at the end."""

    def __init__(self, opening: Callable[[], Awaitable[ChatClient]]) -> None:
        self._opening = opening
        self._client: ChatClient | None = None

    def __await__(self) -> Generator[Any, None, ChatClient]:
        return self._opening().__await__()

    async def __aenter__(self) -> ChatClient:
        self._client = await self._opening()
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.close()


def default_state_file(key_file: str | os.PathLike) -> Path:
    """Where ``connect`` keeps the state of a key file by default: ``state.json`` beside a
    CLI profile's ``keystore.json`` (so the bot and ``chat-client`` share it), else
    ``<key file name>.state.json`` beside it (``bot-key.json`` -> ``bot-key.state.json``)."""
    path = Path(key_file)
    if path.name == "keystore.json":
        return path.with_name("state.json")
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
    return path.with_name(f"{stem}.state.json")


def connect(
    server: str,
    *,
    username: str,
    password: str,
    key_file: str | os.PathLike,
    passphrase: str,
    state_file: str | os.PathLike | Literal[False] | None = None,
    relogin: bool = True,
) -> _Connecting:
    """Log in to ``server`` and unlock ``key_file`` (a §3 keystore, e.g. the CLI's or the
    browser's export): the few lines a bot needs before ``messages()`` and ``send_text``.
    ``client = await connect(...)`` (then ``await client.close()``) or ``async with
    connect(...) as client:``.

    ``state_file`` keeps cursors, counters, order ledgers, rosters and trust across
    restarts: by default ``default_state_file(key_file)``, so a message sent while the
    bot was down is handled once when it is back; ``False`` keeps it in memory only (no
    replay protection across restarts, nothing missed is handed over). With ``relogin``
    (the default) the password stays in memory and an expired session
    (``not_authenticated``, a 4401 close) is renewed by logging in again. A v1 key file of a user
    without an identity is upgraded (§7.5) and rewritten as v2. Raises
    ``WrongPassphrase``, ``ChatApiError('invalid_credentials')``, ``ServerUnreachable``
    and ``DeviceRevoked`` (the key file's device is revoked) before anything else.
    """
    return _Connecting(
        lambda: _connect(server, username, password, key_file, passphrase, state_file, relogin)
    )


async def _connect(
    server: str,
    username: str,
    password: str,
    key_file: str | os.PathLike,
    passphrase: str,
    state_file: str | os.PathLike | Literal[False] | None,
    relogin: bool,
) -> ChatClient:
    session = ChatSession(server)
    await session.login(username, password)
    if relogin:
        session.keep_logged_in(username, password)
    path = Path(key_file)
    record = json.loads(path.read_text(encoding="utf-8"))
    if state_file is None:
        state_file = default_state_file(path)
    state = StateStore(state_file or None, device_id=record["device_id"])
    client = await ChatClient.unlock(session, record, passphrase, state=state)
    await client.check_login()
    await client.check_device()
    if client.keys.id_private is None:
        await client.upgrade(passphrase, save_record=lambda new: write_json(path, new))
    else:
        await client.complete_identity()
    return client
