"""Exceptions of the client library, each with a one-line message fit for a terminal."""

from __future__ import annotations


class ChatError(Exception):
    """Base class of every error the client library raises on purpose."""


class ChatApiError(ChatError):
    """The server answered with a PROTOCOL §4/§6 error body (or an error frame).

    ``status`` is the HTTP status (0 for a WebSocket error frame), ``code`` the §6 code,
    ``detail`` the server's text and ``extra`` any further fields (``missing``, ``extra``,
    ``fields``, ``client_msg_id`` ...).
    """

    def __init__(self, status: int, code: str, detail: str = "", extra: dict | None = None):
        self.status = status
        self.code = code
        self.detail = detail or code.replace("_", " ")
        self.extra = dict(extra or {})
        super().__init__(f"{self.code}: {self.detail}")

    @property
    def transient(self) -> bool:
        """Whether retrying later may succeed: rate limited or a server-side failure."""
        return self.status == 429 or self.status >= 500 or self.code == "rate_limited"


class ServerUnreachable(ChatError):
    """The server could not be reached (refused, timed out, DNS, TLS, connection dropped)."""

    def __init__(self, url: str, reason: object) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach the server at {url}: {reason}")


class SocketClosed(ChatError):
    """The WebSocket closed; ``code`` is its close code (4401, 4403, 4429, 1006 ...)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"connection closed ({code}{': ' + reason if reason else ''})")

    @property
    def fatal(self) -> bool:
        """Whether reconnecting cannot help: not logged in (4401) or device refused (4403)."""
        return self.code in (4401, 4403)


class UntrustedDevice(ChatError):
    """A device record whose kids, keys or proof of possession do not check out."""
