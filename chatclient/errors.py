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


class UntrustedIdentity(ChatError):
    """An identity record whose key, kid or proof does not check out."""


class SendingPaused(ChatError):
    """Nothing is sent to this conversation until the person acts (PROTOCOL §7.4): an
    identity change to accept, or a device without a valid cert to revoke or certify.
    ``problems`` are the ``TrustNotice`` events that say which."""

    def __init__(self, conversation_id: int, problems: list) -> None:
        self.conversation_id = conversation_id
        self.problems = list(problems)
        what = "; ".join(f"{p.username}: {p.detail or p.kind}" for p in self.problems)
        super().__init__(f"sending to conversation {conversation_id} is paused ({what})")


class TamperedConversation(ChatError):
    """The conversation's members cannot be trusted (PROTOCOL §8); nothing is sent to it."""

    def __init__(self, conversation_id: int, reason: str) -> None:
        self.conversation_id = conversation_id
        self.reason = reason
        super().__init__(f"conversation {conversation_id} was tampered with: {reason}")


class LinkError(ChatError):
    """Linking a device failed: denied, expired, a code that does not match, or an
    identity that is not the one the codes were computed from (PROTOCOL §7.2)."""
