"""What a client hands its user: opened messages and notices about the connection.

``ChatClient.events()`` yields these; ``ChatClient.messages()`` only ``IncomingMessage``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .directory import DeviceSetChange

OK = "ok"
UNVERIFIED = "unverified"
REPLAY = "replay"

__all__ = [
    "OK",
    "REPLAY",
    "UNVERIFIED",
    "ConversationChanged",
    "DeviceSetChange",
    "IncomingMessage",
    "ServerNotice",
    "Status",
]


@dataclass(frozen=True)
class IncomingMessage:
    """A stored message after opening.

    ``status`` is ``"ok"`` (unwrapped, committed, signature by a device of the sender
    that was active at ``created``, decrypted), ``"unverified"`` (any step failed;
    ``error`` says which, ``content`` is None) or ``"replay"`` (a second message with an
    already shown (sender, client_msg_id); ``replay_of`` is the first one's id). Only
    ``"ok"`` messages have content; show the others as such, never as text.
    """

    id: int
    conversation: int
    seq: int
    sender_id: int
    sender: str
    sender_device: int
    client_msg_id: str
    created: str
    status: str
    own: bool
    content: dict | None = None
    error: str | None = None
    replay_of: int | None = None

    @property
    def verified(self) -> bool:
        return self.status == OK

    @property
    def text(self) -> str | None:
        """The text of a verified ``{"type":"text"}`` message, else None."""
        if self.status == OK and self.content and self.content.get("type") == "text":
            text = self.content.get("text")
            return text if isinstance(text, str) else None
        return None

    def as_dict(self) -> dict:
        """JSON-able form (adds ``text``)."""
        return {**asdict(self), "text": self.text}


@dataclass(frozen=True)
class Status:
    """Connection state: ``"connected"`` (synced), or ``"disconnected"`` with the reason
    and the seconds until the next attempt."""

    state: str
    detail: str = ""
    retry_in: float | None = None


@dataclass(frozen=True)
class ConversationChanged:
    """The ``conversation`` frame: added to a conversation, or its members changed."""

    conversation: dict


@dataclass(frozen=True)
class ServerNotice:
    """An ``error`` frame the server sent on the listening socket."""

    code: str
    detail: str
    frame: dict
