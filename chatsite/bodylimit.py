"""Request body limits counted on the bytes actually received (PROTOCOL §6; issue 15
finding 3), as an ASGI wrapper around Django: chunked bodies, which carry no
Content-Length, are counted too.

`POST /api/blobs/` may carry MAX_BLOB_BYTES, any other /api/ request MAX_FRAME_BYTES,
everything else (admin and page forms) DATA_UPLOAD_MAX_MEMORY_SIZE. Past it the answer is
413 `{"error": {"code": "too_large", …}}` and Django never sees the request.
"""

import json
import os

from chatsite.middleware import body_limit, too_large_error
from chatsite.serve import BODY_FILE

DISK_CHUNK = 256 * 1024  # bytes per read of a body that chatsite.serve left on disk


def _declared_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimit:
    """Counts `http.request` body bytes as the application receives them. Over the limit,
    the application is told the client went away (`http.disconnect`: Django drops the
    request before any view runs) and the client gets 413 `too_large` in JSON.

    A body that `chatsite.serve` left on disk (`BODY_FILE`) is read from there a chunk at
    a time, as the application asks for it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit(scope["method"], scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            return await self._too_large(send, limit)
        received = 0
        exceeded = False
        started = False
        # [file, offset, length, all handed over] of a body chatsite.serve left on disk
        on_disk = None

        async def counted_receive():
            nonlocal received, exceeded, on_disk
            if exceeded:
                return {"type": "http.disconnect"}
            if on_disk is None or on_disk[3]:
                message = await receive()
                if message["type"] != "http.request":
                    return message
                if BODY_FILE not in message:
                    received += len(message.get("body", b""))
                    if received > limit:
                        exceeded = True
                        return {"type": "http.disconnect"}
                    return message
                on_disk = [message[BODY_FILE][0], 0, message[BODY_FILE][1], False]
                if on_disk[2] > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return read_from_disk()

        def read_from_disk():
            content, offset, length, _ = on_disk
            size = min(DISK_CHUNK, length - offset)
            try:
                data = os.pread(content.fileno(), size, offset) if size else b""
            except (OSError, ValueError):  # the connection closed and took the file along
                return {"type": "http.disconnect"}
            if len(data) != size:
                return {"type": "http.disconnect"}
            on_disk[1] = offset + size
            on_disk[3] = on_disk[1] == length  # later calls wait for daphne's next message
            return {"type": "http.request", "body": data, "more_body": not on_disk[3]}

        async def watched_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, watched_send)
        if exceeded and not started:
            await self._too_large(send, limit)

    @staticmethod
    async def _too_large(send, limit: int) -> None:
        body = json.dumps(too_large_error(limit)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-content-type-options", b"nosniff"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
