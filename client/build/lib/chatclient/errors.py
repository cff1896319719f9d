"""Exceptions of the client library, each with a one-line message fit for a terminal.

Every one derives from ``ChatError``. This module imports nothing, so the server (which
shares ``protocol``) pulls in no client code with it. ``ProtocolError`` is also
``protocol.ProtocolError``, ``KeystoreError`` and ``WrongPassphrase`` are also in
``keystore``, ``FileRefused`` in ``attachments``.
"""

from __future__ import annotations


class ChatError(Exception):
    """Base class of every error the client library raises on purpose."""


class ProtocolError(ChatError):
    """A protocol violation; ``code`` is an error code of PROTOCOL.md §6."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class MessageTooLong(ProtocolError):
    """A text (or caption) longer than ``limit`` (16,000) code points; refused before
    anything is encrypted or sent. ``code`` is ``too_large``, ``length`` the text's."""

    def __init__(self, length: int, limit: int, what: str = "text") -> None:
        super().__init__("too_large", f"the {what} is longer than {limit} characters ({length})")
        self.length = length
        self.limit = limit


class KeystoreError(ChatError):
    """A keystore record that is malformed, out of bounds or holds the wrong keys."""


class WrongPassphrase(KeystoreError):
    """The passphrase does not open the record (or the record's ciphertext was altered)."""


class FileRefused(ChatError):
    """A file a reader must not show: ``code`` says which §10.2 check failed
    (``bad_length``, ``bad_chunk``, ``bad_last``, ``bad_padding``, ``bad_hash``,
    ``bad_meta``), ``detail`` says what."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


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


class RateLimited(ChatApiError):
    """The server refused the request or frame as too frequent (``rate_limited``).
    ``retry_after`` is the seconds it asked to wait, None when it did not say. Sends are
    retried with backoff by the client before this reaches the caller."""

    def __init__(self, status: int, code: str, detail: str = "", extra: dict | None = None):
        super().__init__(status, code, detail, extra)
        retry_after = self.extra.get("retry_after")
        ok = isinstance(retry_after, int | float) and not isinstance(retry_after, bool)
        self.retry_after: float | None = float(retry_after) if ok and retry_after >= 0 else None


def api_error(status: int, code: str, detail: str = "", extra: dict | None = None) -> ChatApiError:
    """The ``ChatApiError`` for a §6 error: ``RateLimited`` for ``rate_limited``."""
    kind = RateLimited if code == "rate_limited" else ChatApiError
    return kind(status, code, detail, extra)


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


class DeviceRevoked(ChatError):
    """This key file's device is revoked (or was never this account's): the server will
    refuse it. Raised when connecting, before anything else is tried; link this machine
    again (``chat-client device link``) or use another key file."""

    def __init__(self, device_id: int, username: str = "") -> None:
        self.device_id = device_id
        self.username = username
        whose = f" of {username}" if username else ""
        super().__init__(
            f"device {device_id}{whose} is revoked: this key file can no longer be used "
            "(link this machine again or use another key file)"
        )


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
