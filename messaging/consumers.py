"""The chat WebSocket (PROTOCOL §5): one consumer per socket, bound to one device."""

import logging
import re
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.errors import ActionError
from accounts.models import User
from chatclient.protocol import is_client_msg_id
from keys.models import Device

from . import actions, batching, dbthread, presence, queries, realtime, visibility
from .frames import parse_frame
from .ratelimit import FrameLimiter

logger = logging.getLogger(__name__)

CLOSE_NOT_LOGGED_IN = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_FLOOD = 4429
PING = '{"type":"ping"}'  # the browser's keep-alive, as JSON.stringify writes it
PONG = '{"type":"pong"}'


def _device_id(query_string: bytes) -> int | None:
    values = parse_qs(query_string.decode("latin-1")).get("device", [])
    if len(values) == 1 and values[0].isdigit() and len(values[0]) <= 18:
        return int(values[0])
    return None


_CLIENT_MSG_ID_RE = re.compile(r'"client_msg_id"\s*:\s*"([0-9a-f-]{36})"')


def _refused_send_id(text_data: str | None) -> str | None:
    """The ``client_msg_id`` of a frame refused unparsed (rate limited), if it names a
    well-formed one: found without parsing the frame, which a refusal must not cost."""
    if not isinstance(text_data, str) or len(text_data) > settings.MAX_FRAME_BYTES:
        return None
    found = _CLIENT_MSG_ID_RE.search(text_data)
    return found.group(1) if found and is_client_msg_id(found.group(1)) else None


LOGGED_OUT = "logged out"
TOO_MANY = "too many sockets"


def _live_sessions(sessions) -> set[str]:
    """The keys of these sessions that still exist: one query with the database backends."""
    if not sessions:
        return set()
    model_of = getattr(sessions[0], "get_model_class", None)
    if model_of is None:
        return {s.session_key for s in sessions if s.exists(s.session_key)}
    keys = {s.session_key for s in sessions}
    return set(model_of().objects.filter(session_key__in=keys).values_list("pk", flat=True))


def _open_sockets(sockets: list[tuple]) -> list:
    """Check the sessions and devices of sockets and record them, a batch in one trip to
    the database thread; each socket is (channel_name, user_id, device_id, session).

    For each: LOGGED_OUT if its session ended since the handshake read it (the socket
    had joined its session group already, so a later end reaches it); None if the device
    is not usable (not hers, revoked, or she is inactive); TOO_MANY (nothing recorded) if
    it makes more than MAX_SOCKETS_PER_USER of hers or MAX_SOCKETS_PER_DEVICE of this
    device; else (device, came online, the online users in touch with her, §6), as
    `presence.register_many` tells: only they are told that she came online, and of two
    who connect at the same time one sees the other.
    """
    results: list = [None] * len(sockets)
    live = _live_sessions([session for *_, session in sockets if session is not None])
    asked = {device_id for _, _, device_id, _ in sockets if device_id is not None}
    devices = (
        {d.pk: d for d in Device.objects.active().filter(pk__in=asked, user__is_active=True)}
        if asked
        else {}
    )
    todo = []
    for i, (_, user_id, device_id, session) in enumerate(sockets):
        device = devices.get(device_id)
        if session is not None and session.session_key not in live:
            results[i] = LOGGED_OUT
        elif device is not None and device.user_id == user_id:
            todo.append(i)
    opened = presence.register_many(
        [sockets[i][:3] for i in todo],
        settings.MAX_SOCKETS_PER_USER,
        settings.MAX_SOCKETS_PER_DEVICE,
    )
    for i, done in zip(todo, opened, strict=True):
        device = devices[sockets[i][2]]
        results[i] = TOO_MANY if done is None else (device, done.came_online, done.online)
    return results


_open_socket = batching.Batcher(_open_sockets)
#: Forget a closed socket (channel_name, user_id): None, or the online users in touch to
#: tell that she went offline (`presence.unregister_many`).
_close_socket = batching.Batcher(presence.unregister_many)


def _typing_recipients(user: User, conversation_id: int) -> list[int]:
    """The other current members she is in touch with there (§6), if `user` is one (else
    `not_found`/`not_member`)."""
    queries.require_membership(user, conversation_id, current=True)
    return [uid for uid in visibility.frame_recipients(user.pk, conversation_id) if uid != user.pk]


_typing_recipients_in_db = dbthread.database_call(_typing_recipients)
_sync_pages_in_db = dbthread.database_call(queries.sync_pages)


def _session_user_id(scope) -> int | None:
    """The user id in the session even when the account is no longer active."""
    session = scope.get("session")
    try:
        return int(session["_auth_user_id"]) if session is not None else None
    except (KeyError, TypeError, ValueError):
        return None


class ChatConsumer(AsyncWebsocketConsumer):
    """Authenticated socket of one device: validates every frame and relays ciphertext.

    Database work happens in one thread hop per frame (inside the actions/queries it
    calls), so the per-message `aclose_old_connections` hop of Channels is skipped.
    """

    user: User | None = None
    device: Device | None = None
    device_id: int | None = None  # as asked in ?device=, before it was checked
    registered = False
    #: user id -> online, as this socket was last told by a `presence` frame (its
    #: snapshot, or `chat_presence`: every other `presence` frame comes that way).
    told_online: dict[int, bool]
    session_key: str | None = None
    closed_by_server = False

    async def dispatch(self, message):
        """Channels' `AsyncConsumer.dispatch` without its per-message
        `aclose_old_connections` (one thread hop per frame); tests/test_upgrade_guard.py
        fails if Channels changes the original."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- lifecycle -------------------------------------------------------------------

    async def connect(self):
        """Check the session and device, join the groups and register the socket, and only
        then accept the handshake: once a client sees its socket open, every frame fanned
        out after that reaches it. Refusals are accepted and then closed (4401, 4403)."""
        self.told_online = {}
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            inactive = _session_user_id(self.scope) is not None
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN if inactive else CLOSE_NOT_LOGGED_IN)
            return
        self.device_id = device_id = _device_id(self.scope.get("query_string", b""))
        session = self.scope.get("session")
        self.session_key = session.session_key if session is not None else None
        if device_id is not None:
            # Join first, then check: a revocation, logout or password change in between
            # still reaches this socket.
            await self.channel_layer.group_add(realtime.user_group(user.pk), self.channel_name)
            await self.channel_layer.group_add(realtime.device_group(device_id), self.channel_name)
            if self.session_key:
                await self.channel_layer.group_add(
                    realtime.session_group(self.session_key), self.channel_name
                )
        opened = await _open_socket(
            (self.channel_name, user.pk, device_id, session if self.session_key else None)
        )
        if opened is LOGGED_OUT:
            await self.accept()
            await self.close(code=CLOSE_NOT_LOGGED_IN)
            return
        if opened is None:
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if opened is TOO_MANY:
            await self.accept()
            detail = (
                f"Too many open sockets (at most {settings.MAX_SOCKETS_PER_USER} per user and"
                f" {settings.MAX_SOCKETS_PER_DEVICE} per device); close one or try again later."
            )
            await self.send_error(ActionError("rate_limited", detail))
            await self.close(code=CLOSE_FLOOD)
            return
        device, came_online, online_users = opened
        self.user, self.device = user, device
        self.limiter = FrameLimiter(
            settings.WS_RATE_PER_SECOND, settings.WS_RATE_BURST, settings.WS_FLOOD_CLOSE_AFTER
        )
        self.registered = True
        # Frames fanned out meanwhile wait in this channel's queue: they are dispatched
        # after connect() returns, so after the accept.
        await self.accept()
        presence.ensure_heartbeat()
        for other in online_users:
            self.told_online[other.pk] = True
            await self.send_frame(presence.presence_frame(other, True))
        if came_online:
            await presence.announce([other.pk for other in online_users], user, True)

    async def disconnect(self, code):
        try:
            await self._leave_groups()
        finally:  # the presence row goes even when Redis fails (else she stays "online")
            await self._unregister()

    async def _leave_groups(self):
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            await self.channel_layer.group_discard(realtime.user_group(user.pk), self.channel_name)
            if self.device_id is not None:
                await self.channel_layer.group_discard(
                    realtime.device_group(self.device_id), self.channel_name
                )
                if self.session_key:
                    await self.channel_layer.group_discard(
                        realtime.session_group(self.session_key), self.channel_name
                    )

    async def _unregister(self):
        if self.registered:
            self.registered = False
            online_co_members = await _close_socket((self.channel_name, self.user.pk))
            if online_co_members is not None:
                await presence.announce(online_co_members, self.user, False)

    # --- frames from the client ---------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if self.device is None:
            return
        if not self.limiter.allow():
            error = ActionError("rate_limited", "Too many frames; slow down.")
            msg_id = _refused_send_id(text_data)
            if msg_id is not None:  # the sender can tell which send to retry (PROTOCOL §5)
                error.extra["client_msg_id"] = msg_id
            await self.send_error(error)
            if self.limiter.flooding:
                await self.close(code=CLOSE_FLOOD)
            return
        try:
            if text_data is None:
                raise ActionError("bad_request", "Frames are JSON text.")
            if (
                len(text_data) * 4 > settings.MAX_FRAME_BYTES
                and len(text_data.encode()) > settings.MAX_FRAME_BYTES
            ):
                raise ActionError(
                    "too_large", f"A frame is at most {settings.MAX_FRAME_BYTES} bytes."
                )
            if text_data == PING:  # keep-alives from idle clients: no parse
                await self.send(text_data=PONG)
                return
            frame = parse_frame(text_data)
            await getattr(self, f"on_{frame.type}")(frame)
        except ActionError as error:
            await self.send_error(error)
        except Exception:
            logger.exception("frame handling failed")
            await self.send_error(ActionError("internal_error", "The server failed on this frame."))

    async def on_send(self, frame):
        try:
            await actions.asend_message(
                self.user,
                frame.conversation,
                frame.client_msg_id,
                frame.envelope.model_dump(),
                device=self.device,
                acknowledge=self.send_frame,
                blobs=frame.blobs,
            )
        except ActionError as error:
            error.extra.setdefault("client_msg_id", frame.client_msg_id)
            raise
        except Exception as exc:  # e.g. the database is down: the sender may retry this id
            logger.exception("send failed")
            raise ActionError(
                "internal_error",
                "The server failed on this frame.",
                client_msg_id=frame.client_msg_id,
            ) from exc

    async def on_sync(self, frame):
        cursors = {int(key): value for key, value in frame.cursors.items()}
        pages = await _sync_pages_in_db(self.user, cursors, settings.SYNC_BATCH_LIMIT)
        synced, has_more = {}, {}
        for conversation_id, messages, more, cursor in pages:
            if isinstance(messages, ActionError):
                await self.send_error(messages)
                continue
            for message in messages:
                await self.send_frame({"type": "message", "message": message})
            synced[str(conversation_id)] = cursor
            has_more[str(conversation_id)] = more
        await self.send_frame({"type": "synced", "cursors": synced, "has_more": has_more})

    async def on_typing(self, frame):
        members = await _typing_recipients_in_db(self.user, frame.conversation)
        typing = {
            "type": "typing",
            "conversation": frame.conversation,
            "user": self.user.username,
            "user_id": self.user.pk,
        }
        await realtime.send_to_users(members, typing)

    async def on_read(self, frame):
        await actions.amark_read(self.user, frame.conversation, frame.up_to)

    async def on_ping(self, frame):
        await self.send(text_data=PONG)

    # --- events from the channel layer ------------------------------------------------

    async def chat_frame(self, event):
        if self.device is not None:
            await self.send(text_data=event["text"])

    async def chat_presence(self, event):
        """A peer came online or went offline: told unless this socket was told so last
        (a socket joins its groups before its snapshot is taken, so a peer coming online
        in between would be named twice: in the snapshot and by her announcement)."""
        if self.device is None or self.told_online.get(event["user_id"]) == event["online"]:
            return
        self.told_online[event["user_id"]] = event["online"]
        await self.send(text_data=event["text"])

    async def chat_close(self, event):
        if self.closed_by_server:  # e.g. logout: both the logout and the session's end
            return
        self.closed_by_server = True
        self.device = None
        await self.close(code=event["code"])

    # --- helpers --------------------------------------------------------------------

    async def send_frame(self, frame: dict) -> None:
        await self.send(text_data=realtime.encode(frame))

    async def send_error(self, error: ActionError) -> None:
        await self.send_frame({"type": "error", **error.as_dict()})
