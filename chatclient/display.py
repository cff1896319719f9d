"""How the terminal shows events: one line each, control characters neutralised.

A failed, replayed or out-of-order message is shown as such, never its text. ``as_json``
gives one JSON object per event for scripts (``--json``).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict

from .attachments import FileRefused, clean_file_name, validate_file_payload
from .events import (
    DELETED,
    EARLIER_IDENTITY,
    NOT_UPGRADED,
    OUT_OF_ORDER,
    REPLAYED,
    ConversationChanged,
    ConversationTampered,
    IncomingMessage,
    LinkRequested,
    MessageReflagged,
    Rollback,
    RosterChange,
    ServerNotice,
    Status,
    TrustNotice,
)
from .payloads import apply_payloads

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
NOTES = {
    EARLIER_IDENTITY: " [signed under an earlier identity of the sender]",
    NOT_UPGRADED: " [not upgraded: no identity key]",
}


def clean(text: str) -> str:
    """Text safe for a terminal: control and bidi-override characters become U+FFFD and
    line breaks are indented, so a message cannot forge other lines or escape codes."""
    return _CONTROL.sub("\ufffd", text).replace("\n", "\n    ")


def message_line(message: IncomingMessage) -> str:
    """``<created> [<conversation>#<seq>] <sender>: <text or warning>``."""
    who = clean(message.sender or f"user {message.sender_id}")
    head = f"{message.created} [{message.conversation}#{message.seq}] {who}"
    if message.status == REPLAYED:
        first = f" of message {message.replay_of}" if message.replay_of else ""
        return f"{head}: !! replayed copy{first} (not shown)"
    if message.status == OUT_OF_ORDER:
        return f"{head}: !! message out of order: the server reordered it (not shown)"
    if message.status == DELETED:
        return f"{head}: (message deleted)"
    if not message.verified:
        return (
            f"{head}: !! message could not be decrypted or verified ({clean(message.error or '')})"
        )
    note = NOTES.get(message.note, "") + (" [v1]" if message.v == 1 else "")
    kind = message.content.get("type")
    if kind in RELATIONS:
        return f"{head}: {relation_text(message)}{note}"
    reply = _reply_text(message, message.content.get("reply_to"))
    if kind == "file":
        return f"{head}: {reply}{file_text(message)}{note}"
    if message.text is None:
        return f"{head}: (a {clean(str(kind))} message this client cannot show){note}"
    return f"{head}: {reply}{clean(message.text)}{note}"


RELATIONS = ("reaction", "edit", "delete")


def _target(message: IncomingMessage, ref: object) -> str:
    """``#12`` for a reference to a message this device judged, else ``a message``."""
    client = getattr(message, "client", None)
    if isinstance(ref, dict) and client is not None:
        seq = client.seq_of(message.conversation, ref)
        if seq is not None:
            return f"#{seq}"
    return "an earlier message"


def _reply_text(message: IncomingMessage, ref: object) -> str:
    return f"(reply to {_target(message, ref)}) " if isinstance(ref, dict) else ""


def relation_text(message: IncomingMessage) -> str:
    """A reaction, edit or delete (§10.1) as one line's text: ``reacted 👍 to #12``."""
    content = message.content or {}
    kind, target = content.get("type"), _target(message, content.get("to"))
    if kind == "reaction":
        emoji = clean(str(content.get("emoji")))
        if content.get("remove") is True:
            return f"took back {emoji} on {target}"
        return f"reacted {emoji} to {target}"
    if kind == "edit":
        return f"edited {target}: {clean(str(content.get('text')))}"
    return f"deleted {target}"


def history_lines(messages: list[IncomingMessage]) -> list[str]:
    """A page of history as shown (``apply_payloads``): reactions, edits and deletes fold
    into the messages they name (``(edited)``, ``[👍 2]``, ``(message deleted)``)."""
    folded = apply_payloads(
        [
            {
                "seq": m.seq,
                "sender_id": m.sender_id,
                "client_msg_id": m.client_msg_id,
                "payload": m.content if m.verified else None,
                "deleted": m.status == DELETED,
            }
            for m in messages
        ]
    )
    by_seq = {m.seq: m for m in messages}
    lines = []
    for entry in folded:
        message = by_seq[entry["seq"]]
        who = clean(message.sender or f"user {message.sender_id}")
        head = f"{message.created} [{message.conversation}#{message.seq}] {who}"
        if entry["deleted"]:
            lines.append(f"{head}: (message deleted)")
            continue
        line = message_line(message)
        if entry["edited"] is not None and entry["type"] == "text":
            reply = _reply_text(message, entry["reply_to"])
            line = f"{head}: {reply}{clean(entry['edited'])} (edited)"
        if entry["reactions"]:
            shown = ", ".join(f"{clean(e)} {len(u)}" for e, u in entry["reactions"].items())
            line += f" [{shown}]"
        lines.append(line)
    return lines


def human_size(size: int) -> str:
    """``512 B``, ``70.3 KiB``, ``5.0 MiB``."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def file_text(message: IncomingMessage) -> str:
    """``[file] <cleaned name> (<size>, <mime>; id <id>)`` and the caption; a malformed
    description is shown as such (§10.2: never its fields)."""
    try:
        meta = validate_file_payload(message.content)
    except FileRefused as exc:
        return f"!! a file this client refused ({clean(exc.detail)})"
    caption = message.content.get("text")
    line = (
        f"[file] {clean(clean_file_name(meta['name']))} ({human_size(meta['size'])}, "
        f"{clean(meta['mime'])}; id {message.id})"
    )
    return f"{line} {clean(caption)}" if caption else line


TRUST_LINES = {
    "identity_changed": "!! {user}'s identity key changed: sending to {user} is paused until "
    "you compare safety numbers and run `chat-client identity accept {user}`",
    "own_identity_changed": "!! the server lists another identity key for your own account "
    "({detail}): someone may have reset it",
    "identity_upgraded": "-- {user} made an identity key, signed by a device you knew",
    "uncertified_device": "!! {user} has a device without a valid certificate ({detail}): "
    "sending to conversations with {user} is paused",
    "own_uncertified_device": "!!! YOUR ACCOUNT has a device you did not link ({detail}): "
    "revoke it with `chat-client device revoke ID` unless you are linking it now",
    "bad_identity": "!! the server shows a bad identity record for {user} ({detail})",
    "roster_waiting": "!! {detail}",
}


def event_line(event: object) -> str | None:
    """The terminal line for any event of ``ChatClient.events()`` (None: nothing to show)."""
    if isinstance(event, IncomingMessage):
        return message_line(event)
    if isinstance(event, TrustNotice):
        template = TRUST_LINES.get(event.kind, "!! {user}: {detail}")
        return template.format(user=clean(event.username), detail=clean(event.detail))
    if isinstance(event, RosterChange):
        return f"-- [{event.conversation}] {clean(event.text)}"
    if isinstance(event, ConversationTampered):
        return (
            f"!!! conversation {event.conversation} was tampered with by the server "
            f"({clean(event.reason)}): nothing will be sent to it"
        )
    if isinstance(event, Rollback):
        return (
            f"!! conversation {event.conversation}: the server lost or changed its history "
            f"from #{event.seq} ({clean(event.detail)}); reading it again"
        )
    if isinstance(event, MessageReflagged):
        return (
            f"!! conversation {event.conversation}: message {event.message_id} shown before "
            f"is {event.status.replace('_', ' ')} (a copy the server replayed)"
        )
    if isinstance(event, LinkRequested):
        return (
            f"-- a new device {clean(event.name)!r} asks to join your account; code "
            f"{event.code}: run `chat-client device approve` if its screen shows this code"
        )
    if isinstance(event, ConversationChanged):
        conversation = event.conversation
        names = ", ".join(clean(m["username"]) for m in conversation.get("members", []))
        return f"-- conversation {conversation.get('id')} ({conversation.get('kind')}): {names}"
    if isinstance(event, ServerNotice):
        return f"-- server: {clean(event.code)}: {clean(event.detail)}"
    return None


EVENT_NAMES = {
    TrustNotice: "trust",
    RosterChange: "roster",
    ConversationTampered: "tampered",
    Rollback: "rollback",
    LinkRequested: "link_request",
    MessageReflagged: "reflagged",
}


def as_json(event: object) -> str | None:
    """One compact JSON line for an event (None for events scripts do not need)."""
    if isinstance(event, IncomingMessage):
        value = {"event": "message", **event.as_dict()}
        if event.file is not None:  # scripts get the description, never the file key
            shown = {k: v for k, v in event.file.items() if k not in ("key", "prefix")}
            value["content"] = {**event.content, "file": shown}
            value["file"] = shown
    elif type(event) in EVENT_NAMES:
        value = {"event": EVENT_NAMES[type(event)], **asdict(event)}
    elif isinstance(event, ConversationChanged):
        value = {"event": "conversation", "conversation": event.conversation}
    elif isinstance(event, ServerNotice):
        value = {"event": "error", "code": event.code, "detail": event.detail}
    elif isinstance(event, Status):
        value = {"event": "status", "state": event.state, "detail": event.detail}
    else:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
