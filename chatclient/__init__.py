"""The Python client of the end-to-end encrypted chat (see docs/client.md).

    from chatclient import connect, ChatError

    async with connect(server, username=..., password=..., key_file=...,
                       passphrase=..., state_file=...) as client:
        async for message in client.messages():
            ...

The names below are imported on first use, so ``from chatclient import protocol`` (which
the server does) loads only the protocol module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

FALLBACK_VERSION = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "ChatClient": "client",
    "SafetyNumber": "client",
    "connect": "client",
    "ChatSession": "session",
    "ChatSocket": "ws",
    "StateStore": "state",
    "IncomingMessage": "events",
    "Message": "objects",
    "Conversation": "events",
    "Typing": "events",
    "ReadMark": "events",
    "Presence": "events",
    "DevicesChanged": "events",
    "run": "runner",
    "RosterChange": "events",
    "TrustNotice": "events",
    "ConversationTampered": "events",
    "Rollback": "events",
    "MessageReflagged": "events",
    "LinkRequested": "events",
    "ConversationChanged": "events",
    "ServerNotice": "events",
    "Status": "events",
    "ChatError": "errors",
    "ChatApiError": "errors",
    "RateLimited": "errors",
    "ServerUnreachable": "errors",
    "SocketClosed": "errors",
    "DeviceRevoked": "errors",
    "ProtocolError": "errors",
    "MessageTooLong": "errors",
    "KeystoreError": "errors",
    "WrongPassphrase": "errors",
    "FileRefused": "errors",
    "UntrustedDevice": "errors",
    "UntrustedIdentity": "errors",
    "SendingPaused": "errors",
    "TamperedConversation": "errors",
    "LinkError": "errors",
    "ProfileError": "config",
}

__all__ = [
    "__version__",
    "ChatClient",
    "SafetyNumber",
    "connect",
    "ChatSession",
    "ChatSocket",
    "StateStore",
    "IncomingMessage",
    "Message",
    "Conversation",
    "Typing",
    "ReadMark",
    "Presence",
    "DevicesChanged",
    "run",
    "RosterChange",
    "TrustNotice",
    "ConversationTampered",
    "Rollback",
    "MessageReflagged",
    "LinkRequested",
    "ConversationChanged",
    "ServerNotice",
    "Status",
    "ChatError",
    "ChatApiError",
    "RateLimited",
    "ServerUnreachable",
    "SocketClosed",
    "DeviceRevoked",
    "ProtocolError",
    "MessageTooLong",
    "KeystoreError",
    "WrongPassphrase",
    "FileRefused",
    "UntrustedDevice",
    "UntrustedIdentity",
    "SendingPaused",
    "TamperedConversation",
    "LinkError",
    "ProfileError",
]


def _version() -> str:
    """The installed distribution's version, else ``FALLBACK_VERSION`` (a source tree)."""
    from importlib import metadata

    try:
        return metadata.version("e2ee-chat-client")
    except metadata.PackageNotFoundError:
        return FALLBACK_VERSION


__version__ = _version()


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'chatclient' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:
    from .client import ChatClient, SafetyNumber, connect
    from .config import ProfileError
    from .errors import (
        ChatApiError,
        ChatError,
        DeviceRevoked,
        FileRefused,
        KeystoreError,
        LinkError,
        MessageTooLong,
        ProtocolError,
        RateLimited,
        SendingPaused,
        ServerUnreachable,
        SocketClosed,
        TamperedConversation,
        UntrustedDevice,
        UntrustedIdentity,
        WrongPassphrase,
    )
    from .events import (
        Conversation,
        ConversationChanged,
        ConversationTampered,
        DevicesChanged,
        IncomingMessage,
        LinkRequested,
        MessageReflagged,
        Presence,
        ReadMark,
        Rollback,
        RosterChange,
        ServerNotice,
        Status,
        TrustNotice,
        Typing,
    )
    from .objects import Message
    from .runner import run
    from .session import ChatSession
    from .state import StateStore
    from .ws import ChatSocket
