"""The payload types of PROTOCOL.md §10.1 beyond the plain text: replies (``reply_to``),
reactions, edits and deletes; their validation; and ``apply_payloads``, the pure reducer
that folds a conversation's opened messages into what to show.

Pure functions over plain JSON values; no I/O, no crypto. The browser twin is
``static/chat/payloads.js`` with the same names in camelCase, proven equal by the shared
vectors ``tests/vectors/payloads.json`` (made by ``tests/vectors/make_payloads.py``). The
text payload itself is ``protocol.text_message`` and the file payload
``attachments.validate_file_payload``; this module builds on them.

The rules (docs/protocol.md, "Rich messages"):

* ``to`` and ``reply_to`` are exactly ``{"sender_id", "client_msg_id"}``: a positive
  integer (at most 2^53-1) and a lowercase canonical UUID. The sender id and
  client_msg_id of a message are bound into its signed AAD (§2), so no server can move a
  reference to another message.
* Texts (and edited texts) are at most 16,000 code points (``too_large``).
* A reaction's ``emoji`` is one emoji of at most 32 bytes of UTF-8 (``is_reaction_emoji``).
* Unknown fields of a payload are ignored; an unknown ``type`` is ``unknown_type``.
"""

from __future__ import annotations

from .attachments import validate_file_payload
from .errors import FileRefused, MessageTooLong, ProtocolError
from .protocol import MAX_TEXT_CHARS, is_client_msg_id, text_message

MAX_EMOJI_BYTES = 32
MAX_SENDER_ID = 2**53 - 1
CONTENT_TYPES = ("text", "file")
RELATION_TYPES = ("reaction", "edit", "delete")
REF_FIELDS = frozenset({"sender_id", "client_msg_id"})

# --- one emoji (is_reaction_emoji) ------------------------------------------------------------
#
# A reaction is one of these sequences of code points, and at most 32 bytes of UTF-8:
#   flag      two regional indicators (U+1F1E6..U+1F1FF)
#   keycap    [0-9#*] U+FE0F? U+20E3
#   tag flag  U+1F3F4, one or more tags U+E0020..U+E007E, then U+E007F
#   zwj       element (U+200D element)*, where element = base (U+FE0F | skin tone)?
#             and a skin tone is U+1F3FB..U+1F3FF (also after U+FE0F: base FE0F tone)
# "base" is a code point in EMOJI_RANGES that is not a regional indicator, skin tone or
# tag. The ranges are the emoji blocks and the symbols Unicode lists as emoji (a little
# wider: every symbol of Miscellaneous Symbols and Dingbats counts). The browser twin
# keeps the same table.

EMOJI_RANGES: tuple[tuple[int, int], ...] = (
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x2194, 0x2199),
    (0x21A9, 0x21AA),
    (0x231A, 0x231B),
    (0x2328, 0x2328),
    (0x23CF, 0x23CF),
    (0x23E9, 0x23F3),
    (0x23F8, 0x23FA),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25AB),
    (0x25B6, 0x25B6),
    (0x25C0, 0x25C0),
    (0x25FB, 0x25FE),
    (0x2600, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B07),
    (0x2B1B, 0x2B1C),
    (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3297),
    (0x3299, 0x3299),
    (0x1F000, 0x1FAFF),
)
ZWJ = 0x200D
VS16 = 0xFE0F
KEYCAP = 0x20E3
BLACK_FLAG = 0x1F3F4
CANCEL_TAG = 0xE007F


def _is_regional(cp: int) -> bool:
    return 0x1F1E6 <= cp <= 0x1F1FF


def _is_tone(cp: int) -> bool:
    return 0x1F3FB <= cp <= 0x1F3FF


def _is_tag(cp: int) -> bool:
    return 0xE0020 <= cp <= 0xE007E


def _is_base(cp: int) -> bool:
    if _is_regional(cp) or _is_tone(cp):
        return False
    return any(low <= cp <= high for low, high in EMOJI_RANGES)


def _is_emoji_sequence(cps: list[int]) -> bool:
    if len(cps) == 2 and _is_regional(cps[0]) and _is_regional(cps[1]):
        return True
    if cps and cps[-1] == KEYCAP:
        body = cps[:-1]
        return len(body) in (1, 2) and chr(body[0]) in "0123456789#*" and body[1:] in ([], [VS16])
    if len(cps) >= 3 and cps[0] == BLACK_FLAG and cps[-1] == CANCEL_TAG:
        return all(_is_tag(cp) for cp in cps[1:-1])
    i = 0
    while True:
        if i >= len(cps) or not _is_base(cps[i]):
            return False
        i += 1
        if i < len(cps) and cps[i] == VS16:
            i += 1
        if i < len(cps) and _is_tone(cps[i]):
            i += 1
        if i == len(cps):
            return True
        if cps[i] != ZWJ:
            return False
        i += 1


def is_reaction_emoji(s: object) -> bool:
    """Whether ``s`` is one emoji fit for a reaction: a string of at most 32 bytes of
    UTF-8 that is one flag, keycap, tag flag, or ZWJ sequence of emoji (each with an
    optional VS16 and skin tone); see the table above. Text, digits, spaces, two emoji,
    and a lone skin tone or regional indicator are not."""
    if not isinstance(s, str) or not s:
        return False
    try:
        size = len(s.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return size <= MAX_EMOJI_BYTES and _is_emoji_sequence([ord(ch) for ch in s])


# --- references and builders ---------------------------------------------------------------


def _bad(detail: str) -> ProtocolError:
    return ProtocolError("bad_request", detail)


def _check_ref(ref: object, name: str) -> dict:
    if (
        not isinstance(ref, dict)
        or set(ref) != REF_FIELDS
        or type(ref["sender_id"]) is not int
        or not 1 <= ref["sender_id"] <= MAX_SENDER_ID
        or not is_client_msg_id(ref["client_msg_id"])
    ):
        raise _bad(f"{name} must be exactly {{sender_id, client_msg_id}}")
    return ref


def message_ref(sender_id: int, client_msg_id: str) -> dict:
    """The reference ``{"sender_id", "client_msg_id"}`` to a message, for ``reply_to`` and
    ``to``; ``bad_request`` unless the id is a positive integer and the client_msg_id a
    lowercase canonical UUID."""
    return _check_ref({"sender_id": sender_id, "client_msg_id": client_msg_id}, "a reference")


def _check_text(text: object, what: str = "text") -> str:
    if not isinstance(text, str):
        raise _bad(f"{what} must be a string")
    if len(text) > MAX_TEXT_CHARS:
        raise MessageTooLong(len(text), MAX_TEXT_CHARS, what)
    return text


def text_payload(text: str, reply_to: dict | None = None) -> dict:
    """``{"type": "text", "text"}`` (``protocol.text_message``), with ``reply_to`` when
    given. Over 16,000 code points is ``MessageTooLong`` (``too_large``)."""
    payload = text_message(text)
    if reply_to is not None:
        payload["reply_to"] = _check_ref(reply_to, "reply_to")
    return payload


def reaction_payload(to: dict, emoji: str, remove: bool = False) -> dict:
    """``{"type": "reaction", "to", "emoji"}``, with ``"remove": true`` to take the
    reaction back. ``bad_request`` for an ``emoji`` that ``is_reaction_emoji`` refuses."""
    if not is_reaction_emoji(emoji):
        raise _bad("emoji must be one emoji of at most 32 bytes")
    if not isinstance(remove, bool):
        raise _bad("remove must be true or false")
    payload: dict = {"type": "reaction", "to": _check_ref(to, "to"), "emoji": emoji}
    if remove:
        payload["remove"] = True
    return payload


def edit_payload(to: dict, text: str) -> dict:
    """``{"type": "edit", "to", "text"}``: the new text of the sender's own message."""
    return {"type": "edit", "to": _check_ref(to, "to"), "text": _check_text(text)}


def delete_payload(to: dict) -> dict:
    """``{"type": "delete", "to"}``: the sender takes her message back (then
    ``DELETE …/messages/<id>/``, §10.1)."""
    return {"type": "delete", "to": _check_ref(to, "to")}


# --- validation ----------------------------------------------------------------------------


def validate_payload(obj: object) -> dict:
    """Check a decrypted payload of any §10.1 type and return it unchanged. Raises
    ``ProtocolError``: ``unknown_type`` for a ``type`` this module does not know,
    ``too_large`` for a text over 16,000 code points, ``bad_request`` for anything else
    malformed (a ``file`` payload as ``attachments.validate_file_payload`` judges it).
    Unknown fields are ignored."""
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise _bad("a payload must be a JSON object with a string type")
    kind = obj["type"]
    if kind == "text":
        _check_text(obj.get("text"))
    elif kind == "file":
        try:
            validate_file_payload(obj)
        except FileRefused as exc:
            raise _bad(f"file: {exc.detail}") from exc
    elif kind == "reaction":
        if not is_reaction_emoji(obj.get("emoji")):
            raise _bad("emoji must be one emoji of at most 32 bytes")
        if "remove" in obj and not isinstance(obj["remove"], bool):
            raise _bad("remove must be true or false")
    elif kind == "edit":
        _check_text(obj.get("text"))
    elif kind != "delete":
        raise ProtocolError("unknown_type", f"unknown payload type {kind[:40]!r}")
    if kind in CONTENT_TYPES:
        if "reply_to" in obj:
            _check_ref(obj["reply_to"], "reply_to")
    else:
        _check_ref(obj.get("to"), "to")
    return obj


def _valid(obj: object) -> bool:
    try:
        validate_payload(obj)
    except ProtocolError:
        return False
    return True


# --- the reducer ---------------------------------------------------------------------------


def apply_payloads(messages: list[dict]) -> list[dict]:
    """Fold a conversation's opened messages, ordered by ``seq``, into what to show.

    Each message is ``{"seq", "sender_id", "client_msg_id", "payload", "deleted"?}``:
    ``payload`` is the decrypted, verified payload, or None for a message that did not
    open (or that order checks flagged); ``deleted`` true is an envelope the server
    nulled (taken back). Other fields are ignored.

    Returns one entry per message to show, in the same order:
    ``{"seq", "sender_id", "client_msg_id", "type", "payload", "reply_to", "edited",
    "deleted", "reactions"}``:

    * a valid ``text`` or ``file`` message: ``type`` and ``payload`` its own, ``reply_to``
      its reference or None, ``edited`` the latest edit's text or None, ``reactions``
      ``{emoji: [user ids]}`` (users in the order their standing reaction came; emoji in
      the order they first stood; none with no users);
    * a deleted message (by a ``delete`` from its sender, or nulled by the server):
      ``deleted`` true, ``type``/``payload``/``reply_to``/``edited`` None, no reactions;
    * a message that did not open, or whose text/file payload is malformed: ``type`` and
      ``payload`` None, not deleted (the caller shows why from what it knows).

    Reactions, edits and deletes are not shown as messages; neither is a payload of an
    unknown type. They apply to an earlier shown text/file message named by ``to``: an
    edit or delete only from its sender (same ``sender_id``), a reaction from anyone,
    the latest per (user, emoji) standing. Malformed ones, ones whose target is unknown
    (not earlier, not text/file) or already deleted, are ignored.
    """
    shown: list[dict] = []
    targets: dict[tuple[int, str], dict] = {}
    for message in messages:
        payload = message.get("payload")
        entry = {
            "seq": message["seq"],
            "sender_id": message["sender_id"],
            "client_msg_id": message["client_msg_id"],
            "type": None,
            "payload": None,
            "reply_to": None,
            "edited": None,
            "deleted": message.get("deleted") is True,
            "reactions": {},
        }
        if entry["deleted"] or payload is None:
            shown.append(entry)
            continue
        kind = payload.get("type") if isinstance(payload, dict) else None
        if kind in CONTENT_TYPES:
            if _valid(payload):
                entry.update(type=kind, payload=payload, reply_to=payload.get("reply_to"))
                key = (entry["sender_id"], entry["client_msg_id"])
                targets.setdefault(key, entry)
            shown.append(entry)
            continue
        if kind not in RELATION_TYPES or not _valid(payload):
            continue
        to = payload["to"]
        target = targets.get((to["sender_id"], to["client_msg_id"]))
        if target is None or target["deleted"]:
            continue
        if kind == "reaction":
            _react(target["reactions"], message["sender_id"], payload)
        elif target["sender_id"] != message["sender_id"]:
            continue
        elif kind == "edit":
            target["edited"] = payload["text"]
        else:
            target.update(
                deleted=True, type=None, payload=None, reply_to=None, edited=None, reactions={}
            )
    return shown


def _react(reactions: dict, user_id: int, payload: dict) -> None:
    emoji = payload["emoji"]
    users = reactions.get(emoji, [])
    if user_id in users:
        users.remove(user_id)
    if not payload.get("remove"):
        users.append(user_id)
    if users:
        reactions[emoji] = users
    else:
        reactions.pop(emoji, None)
