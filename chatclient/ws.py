"""The chat WebSocket of PROTOCOL §5: one device's authenticated socket, JSON frames in and out.

``ChatSocket.open`` dials ``/ws/chat/?device=<id>`` with the session's cookies and the
server's own ``Origin``. Closes surface as ``SocketClosed`` (``.code`` 4401/4403/4429 or
a transport code), refusals at the handshake as ``ChatApiError``, a server that cannot be
reached as ``ServerUnreachable``.

A listening socket is read by a task of its own (``start_reading``): the ``ack`` or
``error`` frame of a send in flight (``exchange``) goes straight to its sender, every
other frame waits for ``recv_frame`` in arrival order. So a handler can send on the
socket it was called from and await the answer while the listener is paused in it.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .errors import ChatApiError, ServerUnreachable, SocketClosed
from .session import ChatSession

MAX_INCOMING_BYTES = 4 * 1024 * 1024


def ws_url(base_url: str, device_id: int) -> str:
    """``ws(s)://host/prefix/ws/chat/?device=<id>`` for an ``http(s)://`` base URL."""
    parts = urllib.parse.urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = parts.path.rstrip("/") + "/ws/chat/"
    return urllib.parse.urlunsplit((scheme, parts.netloc, path, f"device={int(device_id)}", ""))


class ChatSocket:
    """An open chat socket; frames are dicts, encoded as compact JSON text."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._frames: asyncio.Queue[dict | BaseException] | None = None
        self._reader: asyncio.Task | None = None
        self._waiting: dict[str, asyncio.Future[dict]] = {}
        self._ended: BaseException | None = None

    @classmethod
    async def open(
        cls, session: ChatSession, device_id: int, *, open_timeout: float = 10.0
    ) -> ChatSocket:
        """Connect as ``device_id`` with the session's cookies and ``Origin``."""
        url = ws_url(session.base_url, device_id)
        headers = {}
        cookie = session.cookie_header()
        if cookie:
            headers["Cookie"] = cookie
        try:
            connection = await connect(
                url,
                additional_headers=headers,
                origin=session.origin,
                open_timeout=open_timeout,
                max_size=MAX_INCOMING_BYTES,
                proxy=None,
            )
        except InvalidStatus as error:
            status = error.response.status_code
            code = "forbidden" if status == 403 else "bad_request"
            raise ChatApiError(
                status, code, f"WebSocket handshake refused (HTTP {status})"
            ) from error
        except (TimeoutError, OSError, InvalidHandshake) as error:
            raise ServerUnreachable(session.base_url, str(error) or type(error).__name__) from error
        return cls(connection)

    async def send_frame(self, frame: dict) -> None:
        """Send one frame; a closed socket raises ``SocketClosed``."""
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        try:
            await self.connection.send(text)
        except ConnectionClosed as error:
            raise _closed(error) from error

    @property
    def reading(self) -> bool:
        """Whether a task reads this socket (``start_reading``) and it has not ended."""
        return self._reader is not None and self._ended is None

    def start_reading(self) -> None:
        """From now on read frames in a task of this socket (see the module docstring);
        ``recv_frame`` hands them out. Idempotent."""
        if self._reader is None:
            self._frames = asyncio.Queue()
            self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self._frames is not None
        try:
            while True:
                frame = await self._next_frame(None)
                msg_id = frame.get("client_msg_id")
                waiter = self._waiting.pop(msg_id, None) if isinstance(msg_id, str) else None
                if waiter is not None and frame.get("type") in ("ack", "error"):
                    if not waiter.done():
                        waiter.set_result(frame)
                    continue
                if waiter is not None:  # another frame naming it: still waiting
                    self._waiting[msg_id] = waiter
                self._frames.put_nowait(frame)
        except asyncio.CancelledError:
            self._end(SocketClosed(1000, "closed by this client"))
            raise
        except Exception as error:  # SocketClosed, mostly: every reader hears of it
            self._end(error)

    def _end(self, error: BaseException) -> None:
        self._ended = error
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(error)
        self._waiting.clear()
        if self._frames is not None:
            self._frames.put_nowait(error)

    async def exchange(self, frame: dict, client_msg_id: str, timeout: float) -> dict:
        """Send a frame naming ``client_msg_id`` and return the ``ack`` or ``error``
        frame that answers it, on a socket that ``start_reading`` reads. Raises
        ``SocketClosed`` if the socket ends first, ``TimeoutError`` after ``timeout``
        seconds (the send may still have been stored: send it again with the same id)."""
        if not self.reading:
            raise SocketClosed(None, "this socket is not read by a task")
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[client_msg_id] = waiter
        try:
            await self.send_frame(frame)
            async with asyncio.timeout(timeout):
                return await waiter
        finally:
            if self._waiting.get(client_msg_id) is waiter:
                del self._waiting[client_msg_id]

    async def recv_frame(self, timeout: float | None = None) -> dict:
        """The next frame as a dict (non-JSON or non-object frames are skipped).

        Raises ``SocketClosed`` when the socket closes and ``TimeoutError`` after
        ``timeout`` seconds without a frame.
        """
        if self._frames is None:
            return await self._next_frame(timeout)
        async with asyncio.timeout(timeout):
            item = await self._frames.get()
        if isinstance(item, BaseException):
            self._frames.put_nowait(item)  # every later call raises it too
            raise item
        return item

    async def _next_frame(self, timeout: float | None) -> dict:
        while True:
            try:
                async with asyncio.timeout(timeout):
                    text = await self.connection.recv()
            except ConnectionClosed as error:
                raise _closed(error) from error
            try:
                frame = json.loads(text)
            except (TypeError, ValueError):
                continue
            if isinstance(frame, dict):
                return frame

    async def close(self) -> None:
        """Close normally (idempotent); a reading task ends, sends in flight get
        ``SocketClosed``."""
        await self.connection.close()
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    async def __aenter__(self) -> ChatSocket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _closed(error: ConnectionClosed) -> SocketClosed:
    close = error.rcvd or error.sent
    if close is None:
        return SocketClosed(1006, "connection lost")
    return SocketClosed(close.code, close.reason)
