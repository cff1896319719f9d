"""``Message``: an opened message bound to the client that opened it, so a bot can answer
it (``reply``, ``react``, ``edit``, ``delete``; PROTOCOL §10.1 payloads of
``chatclient.payloads``).

``ChatClient.open`` (and so ``history``, ``events`` and ``messages``) returns these; a
``Message`` is an ``IncomingMessage`` with the same fields and verdicts.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from . import payloads
from .errors import ChatError
from .events import OK, IncomingMessage

if TYPE_CHECKING:
    from .client import ChatClient


@dataclass(frozen=True)
class Message(IncomingMessage):
    """An ``IncomingMessage`` that can be answered. ``kind`` is the payload's type
    (``text``, ``file``, ``reaction``, ``edit``, ``delete``) of an ``"ok"`` message;
    ``reply_to``/``to`` its references (``{"sender_id", "client_msg_id"}``)."""

    client: ChatClient | None = field(default=None, repr=False, compare=False)

    @property
    def kind(self) -> str | None:
        if self.status == OK and isinstance(self.content, dict):
            kind = self.content.get("type")
            return kind if isinstance(kind, str) else None
        return None

    @property
    def ref(self) -> dict[str, Any]:
        """This message as a reference (``to``/``reply_to`` of §10.1)."""
        return payloads.message_ref(self.sender_id, self.client_msg_id)

    @property
    def reply_to(self) -> dict[str, Any] | None:
        value = self.content.get("reply_to") if self.kind in ("text", "file") else None
        return value if isinstance(value, dict) else None

    @property
    def to(self) -> dict[str, Any] | None:
        """The message a reaction, edit or delete applies to."""
        value = self.content.get("to") if self.kind in payloads.RELATION_TYPES else None
        return value if isinstance(value, dict) else None

    @property
    def emoji(self) -> str | None:
        value = self.content.get("emoji") if self.kind == "reaction" else None
        return value if isinstance(value, str) else None

    def _client(self) -> ChatClient:
        if self.client is None:
            raise ChatError("this message is not bound to a client")
        if self.status != OK:
            raise ChatError(f"message {self.id} is {self.status}: it cannot be answered")
        return self.client

    async def reply(self, text: str) -> dict[str, Any]:
        """Send ``text`` to the same conversation as a reply to this message; returns the
        stored message. ``MessageTooLong`` over 16,000 characters."""
        client = self._client()
        return await client.send(self.conversation, payloads.text_payload(text, self.ref))

    async def react(self, emoji: str, *, remove: bool = False) -> dict[str, Any]:
        """React with one emoji (or take that reaction back with ``remove``)."""
        client = self._client()
        payload = payloads.reaction_payload(self.ref, emoji, remove)
        return await client.send(self.conversation, payload)

    async def edit(self, text: str) -> dict[str, Any]:
        """Replace the text of my own message (others see it as edited)."""
        client = self._own()
        return await client.send(self.conversation, payloads.edit_payload(self.ref, text))

    async def delete(self) -> None:
        """Take my own message back for everyone: a ``delete`` payload, then the server
        removes the ciphertext (``DELETE …/messages/<id>/``, §10.1)."""
        client = self._own()
        await client.send(self.conversation, payloads.delete_payload(self.ref))
        await client.session.delete_message(self.conversation, self.id)

    def _own(self) -> ChatClient:
        client = self._client()
        if not self.own:
            raise ChatError(f"message {self.id} is not mine: only its sender may change it")
        return client

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (adds ``text``; without the client)."""
        data = {f.name: deepcopy(getattr(self, f.name)) for f in fields(self) if f.name != "client"}
        return {**data, "text": self.text}
