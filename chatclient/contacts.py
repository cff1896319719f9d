"""Message requests and blocks (PROTOCOL §6; docs/protocol.md "Message requests and
blocking"), for the ``ChatClient`` and the CLI.

A direct conversation started by someone this user never wrote to arrives with
``"request": true``: until she accepts it (``accept``, or by sending in it) the starter
sees neither her presence nor her typing or read receipts. ``decline`` deletes the
request on all her devices until the starter writes again; ``block`` keeps that user
from starting or sending in a direct conversation with her or adding her to a group.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from .client import ChatClient
    from .session import ChatSession

REQUEST_MARK = "[request]"


def _session(client) -> ChatSession:
    """The session of a ``ChatClient`` (or the ``ChatSession`` given): blocks and declines
    need no keys."""
    return getattr(client, "session", client)


def _conversation_id(conversation: int | dict) -> int:
    return conversation["id"] if isinstance(conversation, dict) else int(conversation)


def _user_path(username: str) -> str:
    return f"/api/users/{quote(username, safe='')}/block/"


def is_request(conversation: dict) -> bool:
    """Whether this conversation object is a pending message request for me."""
    return conversation.get("request") is True


def pending(conversations: list[dict]) -> list[dict]:
    """The pending message requests among these conversation objects, in their order."""
    return [c for c in conversations if is_request(c)]


async def accept(client: ChatClient, conversation: int | dict) -> dict:
    """Accept a message request (nothing changes when it is none); the conversation object
    afterwards, verified like any other (``ChatClient.observe``)."""
    path = f"/api/conversations/{_conversation_id(conversation)}/accept/"
    answer = await client.session.request("POST", path)
    return await client.observe(answer["conversation"])


async def decline(client: ChatClient | ChatSession, conversation: int | dict) -> None:
    """Delete a pending message request (on all my devices) until its starter writes
    again; ``ChatApiError('bad_request')`` when it is not a pending request."""
    path = f"/api/conversations/{_conversation_id(conversation)}/decline/"
    await _session(client).request("POST", path)


async def block(client: ChatClient | ChatSession, username: str) -> None:
    """Block a user (again: nothing changes)."""
    await _session(client).request("POST", _user_path(username))


async def unblock(client: ChatClient | ChatSession, username: str) -> None:
    """Lift my block of a user (none: nothing changes)."""
    await _session(client).request("DELETE", _user_path(username))


class RequestTracker:
    """Which conversations are pending requests, kept up to date from ``conversation``
    frames, so a listener can mark their messages (``mark``)."""

    def __init__(self, conversations: list[dict]) -> None:
        self.ids = {c["id"] for c in pending(conversations)}

    def update(self, conversation: dict) -> None:
        """Take in a conversation object (from a frame or a list)."""
        cid = conversation.get("id")
        if is_request(conversation) and not conversation.get("declined"):
            self.ids.add(cid)
        else:
            self.ids.discard(cid)

    def mark(self, conversation_id: int, line: str, *, as_json: bool = False) -> str:
        """A message's ``line`` marked when its conversation is a pending request: the mark
        in front, or ``"request": true`` added to a JSON line."""
        if conversation_id not in self.ids:
            return line
        if as_json:
            return json.dumps({**json.loads(line), "request": True}, ensure_ascii=False)
        return f"{REQUEST_MARK} {line}"
