"""How the terminal shows events: one line each, control characters neutralised.

A failed or replayed message is shown as such, never its text. ``as_json`` gives one
JSON object per event for scripts (``--json``).
"""

from __future__ import annotations

import json
import re

from .directory import DeviceSetChange, fingerprint
from .events import REPLAY, ConversationChanged, IncomingMessage, ServerNotice, Status

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """Text safe for a terminal: control and bidi-override characters become U+FFFD and
    line breaks are indented, so a message cannot forge other lines or escape codes."""
    return _CONTROL.sub("\ufffd", text).replace("\n", "\n    ")


def message_line(message: IncomingMessage) -> str:
    """``<created> [<conversation>#<seq>] <sender>: <text or warning>``."""
    who = clean(message.sender or f"user {message.sender_id}")
    head = f"{message.created} [{message.conversation}#{message.seq}] {who}"
    if message.status == REPLAY:
        return f"{head}: !! replayed copy of message {message.replay_of} (not shown again)"
    if not message.verified:
        return (
            f"{head}: !! message could not be decrypted or verified ({clean(message.error or '')})"
        )
    if message.text is None:
        return f"{head}: (a {clean(str(message.content.get('type')))!s} message this client cannot show)"
    return f"{head}: {clean(message.text)}"


def device_change_line(change: DeviceSetChange) -> str:
    """The warning for a contact's changed device set."""
    parts = [f"+{fingerprint(k)}" for k in change.added] + [
        f"-{fingerprint(k)}" for k in change.removed
    ]
    return (
        f"!! {clean(change.username)}'s devices changed ({len(change.added)} added, "
        f"{len(change.removed)} removed): {'; '.join(parts)}"
    )


def event_line(event: object) -> str | None:
    """The terminal line for any event of ``ChatClient.events()`` (None: nothing to show)."""
    if isinstance(event, IncomingMessage):
        return message_line(event)
    if isinstance(event, DeviceSetChange):
        return device_change_line(event)
    if isinstance(event, ConversationChanged):
        conversation = event.conversation
        names = ", ".join(clean(m["username"]) for m in conversation.get("members", []))
        return f"-- conversation {conversation.get('id')} ({conversation.get('kind')}): {names}"
    if isinstance(event, ServerNotice):
        return f"-- server: {clean(event.code)}: {clean(event.detail)}"
    return None


def as_json(event: object) -> str | None:
    """One compact JSON line for an event (None for events scripts do not need)."""
    if isinstance(event, IncomingMessage):
        value = {"event": "message", **event.as_dict()}
    elif isinstance(event, DeviceSetChange):
        value = {
            "event": "devices_changed",
            "user": event.username,
            "added": list(event.added),
            "removed": list(event.removed),
        }
    elif isinstance(event, ConversationChanged):
        value = {"event": "conversation", "conversation": event.conversation}
    elif isinstance(event, ServerNotice):
        value = {"event": "error", "code": event.code, "detail": event.detail}
    elif isinstance(event, Status):
        value = {"event": "status", "state": event.state, "detail": event.detail}
    else:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
