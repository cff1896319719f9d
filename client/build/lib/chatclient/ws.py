"""The chat WebSocket of PROTOCOL §5: one device's authenticated socket, JSON frames in and out.

``ChatSocket.open`` dials ``/ws/chat/?device=<id>`` with the session's cookies and the
server's own ``Origin``. Closes surface as ``SocketClosed`` (``.code`` 4401/4403/4429 or
a transport code), refusals at the handshake as ``ChatApiError``, a server that cannot be
reached as ``ServerUnreachable``.
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

    async def recv_frame(self, timeout: float | None = None) -> dict:
        """The next frame as a dict (non-JSON or non-object frames are skipped).

        Raises ``SocketClosed`` when the socket closes and ``TimeoutError`` after
        ``timeout`` seconds without a frame.
        """
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
        """Close normally (idempotent)."""
        await self.connection.close()

    async def __aenter__(self) -> ChatSocket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _closed(error: ConnectionClosed) -> SocketClosed:
    close = error.rcvd or error.sent
    if close is None:
        return SocketClosed(1006, "connection lost")
    return SocketClosed(close.code, close.reason)
