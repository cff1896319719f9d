"""Write ``payloads.json``: the shared vectors of ``chatclient/payloads.py`` and its browser
twin ``static/chat/payloads.js`` (PROTOCOL §10.1; docs/protocol.md, "Rich messages").

    .venv/bin/python tests/vectors/make_payloads.py

Every answer in the file is what the Python module gives; ``tests/test_payload_vectors.py``
checks Python against it (and a few answers by hand) and ``tests/js/payloads.test.mjs``
checks the browser. A value ``{"$repeat": [s, n]}`` anywhere in a case stands for ``s``
repeated ``n`` times (the 16,000-character edges without a 64 KB file).

* ``builders``: ``[function, args, result]`` where result is the payload or
  ``{"error": code}``;
* ``validate``: ``[name, payload, error code or null]``;
* ``emoji``: ``[string, is_reaction_emoji]``;
* ``reduce``: ``{name, messages, shown}`` for ``apply_payloads``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from chatclient import payloads  # noqa: E402
from chatclient.errors import ProtocolError  # noqa: E402

ALICE, BOB, CAROL = 1, 2, 3


def cm(i: int) -> str:
    """A fixed lowercase UUID4 (client_msg_id) numbered ``i``."""
    return f"{i:08x}-abcd-4def-8abc-{i:012x}"


def ref(sender: int, i: int) -> dict:
    return {"sender_id": sender, "client_msg_id": cm(i)}


def rep(s: str, n: int) -> dict:
    return {"$repeat": [s, n]}


def expand(value: object) -> object:
    """``value`` with every ``{"$repeat": [s, n]}`` spelled out."""
    if isinstance(value, dict):
        if set(value) == {"$repeat"}:
            s, n = value["$repeat"]
            return s * n
        return {k: expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v) for v in value]
    return value


def outcome(fn, *args) -> object:
    try:
        return fn(*expand(list(args)))
    except ProtocolError as exc:
        return {"error": exc.code}


def compact(result: object, args: list) -> object:
    """A builder's result with a repeated text written as in the args."""
    if isinstance(result, dict) and isinstance(result.get("text"), str):
        for arg in args:
            if isinstance(arg, dict) and "$repeat" in arg and expand(arg) == result["text"]:
                return {**result, "text": arg}
    return result


FILE_META = {
    "blob": "AbCdEfGhIjKlMnOpQrStUv",
    "key": "A" * 42 + "E=",
    "prefix": "AAAAAAAAAAE=",
    "size": 1000,
    "sha256": "ab" * 32,
    "name": "report.pdf",
    "mime": "application/pdf",
}

BUILDERS: list[tuple[str, list]] = [
    ("message_ref", [BOB, cm(1)]),
    ("message_ref", [0, cm(1)]),
    ("message_ref", [True, cm(1)]),
    ("message_ref", ["2", cm(1)]),
    ("message_ref", [2**53 - 1, cm(1)]),
    ("message_ref", [2**53, cm(1)]),
    ("message_ref", [BOB, cm(1).upper()]),
    ("message_ref", [BOB, "not-a-uuid"]),
    ("text_payload", ["hello"]),
    ("text_payload", ["שלום עולם", ref(BOB, 1)]),
    ("text_payload", ["hi", None]),
    ("text_payload", [rep("😀", 16000)]),
    ("text_payload", [rep("😀", 16001)]),
    ("text_payload", [5]),
    ("text_payload", ["hi", {**ref(BOB, 1), "seq": 4}]),
    ("text_payload", ["hi", {"sender_id": BOB}]),
    ("reaction_payload", [ref(BOB, 1), "👍"]),
    ("reaction_payload", [ref(BOB, 1), "👍", False]),
    ("reaction_payload", [ref(BOB, 1), "👍", True]),
    ("reaction_payload", [ref(BOB, 1), "👍🏽"]),
    ("reaction_payload", [ref(BOB, 1), "ok"]),
    ("reaction_payload", [ref(BOB, 1), "👍👍"]),
    ("reaction_payload", [ref(BOB, 1), "👍", "yes"]),
    ("reaction_payload", [None, "👍"]),
    ("edit_payload", [ref(ALICE, 2), "fixed"]),
    ("edit_payload", [ref(ALICE, 2), rep("a", 16001)]),
    ("edit_payload", [ref(ALICE, 2), None]),
    ("edit_payload", [{"sender_id": ALICE, "client_msg_id": "x"}, "fixed"]),
    ("delete_payload", [ref(ALICE, 2)]),
    ("delete_payload", [None]),
    ("delete_payload", [[ALICE, cm(2)]]),
]

VALIDATE: list[tuple[str, object]] = [
    ("text", {"type": "text", "text": "hi"}),
    ("text, empty", {"type": "text", "text": ""}),
    ("text, a reply", {"type": "text", "text": "yes", "reply_to": ref(BOB, 1)}),
    ("text, unknown fields ignored", {"type": "text", "text": "hi", "x-future": [1, 2]}),
    ("text, 16,000 code points", {"type": "text", "text": rep("😀", 16000)}),
    ("text, 16,001 code points", {"type": "text", "text": rep("😀", 16001)}),
    ("text, missing", {"type": "text"}),
    ("text, not a string", {"type": "text", "text": ["hi"]}),
    (
        "reply_to, an extra field",
        {"type": "text", "text": "y", "reply_to": {**ref(BOB, 1), "seq": 1}},
    ),
    (
        "reply_to, sender_id a string",
        {"type": "text", "text": "y", "reply_to": {"sender_id": "2", "client_msg_id": cm(1)}},
    ),
    ("reply_to, sender_id 0", {"type": "text", "text": "y", "reply_to": ref(0, 1)}),
    (
        "reply_to, client_msg_id upper case",
        {"type": "text", "text": "y", "reply_to": {"sender_id": 2, "client_msg_id": cm(1).upper()}},
    ),
    ("reply_to, null", {"type": "text", "text": "y", "reply_to": None}),
    ("file", {"type": "file", "file": FILE_META}),
    (
        "file, caption and reply",
        {"type": "file", "file": FILE_META, "text": "see", "reply_to": ref(BOB, 1)},
    ),
    ("file, bad meta", {"type": "file", "file": {**FILE_META, "size": -1}}),
    (
        "file, reply_to with an extra field",
        {"type": "file", "file": FILE_META, "reply_to": {**ref(BOB, 1), "x": 1}},
    ),
    ("file, caption too long", {"type": "file", "file": FILE_META, "text": rep("a", 16001)}),
    ("reaction", {"type": "reaction", "to": ref(BOB, 1), "emoji": "🎉"}),
    ("reaction, remove", {"type": "reaction", "to": ref(BOB, 1), "emoji": "🎉", "remove": True}),
    (
        "reaction, remove false",
        {"type": "reaction", "to": ref(BOB, 1), "emoji": "🎉", "remove": False},
    ),
    (
        "reaction, remove not a boolean",
        {"type": "reaction", "to": ref(BOB, 1), "emoji": "🎉", "remove": 1},
    ),
    ("reaction, text for an emoji", {"type": "reaction", "to": ref(BOB, 1), "emoji": "lol"}),
    ("reaction, no emoji", {"type": "reaction", "to": ref(BOB, 1)}),
    ("reaction, no to", {"type": "reaction", "emoji": "🎉"}),
    ("reaction, to is a list", {"type": "reaction", "to": [2, cm(1)], "emoji": "🎉"}),
    ("edit", {"type": "edit", "to": ref(ALICE, 2), "text": "better"}),
    ("edit, too long", {"type": "edit", "to": ref(ALICE, 2), "text": rep("a", 16001)}),
    ("edit, no text", {"type": "edit", "to": ref(ALICE, 2)}),
    ("edit, no to", {"type": "edit", "text": "better"}),
    ("delete", {"type": "delete", "to": ref(ALICE, 2)}),
    ("delete, to with a seq instead", {"type": "delete", "to": {"seq": 4}}),
    ("unknown type", {"type": "poll", "question": "?"}),
    ("type not a string", {"type": 5}),
    ("no type", {"text": "hi"}),
    ("not an object", ["text", "hi"]),
    ("null", None),
]

EMOJI: list[str] = [
    "👍",
    "❤️",
    "❤",
    "👍🏽",
    "👩‍💻",
    "👨‍👩‍👧‍👦",
    "👨‍👩‍👧‍👦‍👦",
    "👨‍👩‍👧‍👦‍👦‍👦",
    "🏳️‍🌈",
    "❤️‍🔥",
    "🏃🏽‍♀️",
    "🧑🏻‍🤝‍🧑🏼",
    "👩🏻‍❤️‍💋‍👨🏼",
    "🇫🇷",
    "🇺🇳",
    "🇫",
    "🇫🇷🇩🇪",
    "#️⃣",
    "1⃣",
    "*️⃣",
    "10⃣",
    "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
    "🏴",
    "🏽",
    "©",
    "™️",
    "★",
    "☺︎",
    "→",
    "🫠",
    "🤌🏼",
    "🀄",
    "1",
    "a",
    "",
    " 👍",
    "👍 ",
    "👍👍",
    "😀\u200d",
    "\u200d😀",
    "😀\u200d\u200d😀",
    "<3",
    ":)",
    "\ufe0f",
    "\u20e3",
    "👍\ufe0f\ufe0f",
]


def reduce_cases() -> list[dict]:
    def m(seq: int, sender: int, payload: object, *, i: int | None = None, deleted=False) -> dict:
        msg = {"seq": seq, "sender_id": sender, "client_msg_id": cm(i if i is not None else seq)}
        msg["payload"] = None if deleted else payload
        if deleted:
            msg["deleted"] = True
        return msg

    def text(t: str, reply: dict | None = None) -> dict:
        return payloads.text_payload(t, reply)

    react = payloads.reaction_payload
    edit = payloads.edit_payload
    delete = payloads.delete_payload
    a1, b2 = ref(ALICE, 1), ref(BOB, 2)
    cases = {
        "a reply keeps its reference (also to an unknown message)": [
            m(1, ALICE, text("lunch?")),
            m(2, BOB, text("yes", a1)),
            m(3, CAROL, text("me too", ref(ALICE, 99))),
        ],
        "reactions by two people, taken back, latest per user and emoji": [
            m(1, ALICE, text("lunch?")),
            m(2, BOB, react(a1, "👍")),
            m(3, CAROL, react(a1, "👍")),
            m(4, CAROL, react(a1, "❤️")),
            m(5, BOB, react(a1, "👍", True)),
            m(6, BOB, react(a1, "👍")),
            m(7, CAROL, react(a1, "❤️", True)),
            m(8, CAROL, react(a1, "❤️", True)),
            m(9, ALICE, react(a1, "😂")),
            m(10, CAROL, react(a1, "👍")),
        ],
        "a reaction taken back by someone else changes nothing": [
            m(1, ALICE, text("lunch?")),
            m(2, BOB, react(a1, "👍")),
            m(3, CAROL, react(a1, "👍", True)),
            m(4, ALICE, react(a1, "👍", True)),
        ],
        "edits by the sender, the latest wins; an edit by anyone else is ignored": [
            m(1, ALICE, text("helo")),
            m(2, ALICE, edit(a1, "hello")),
            m(3, BOB, edit(a1, "I was hacked")),
            m(4, ALICE, edit(a1, "hello!")),
        ],
        "a file's caption can be edited": [
            m(1, ALICE, {"type": "file", "file": FILE_META, "text": "draft"}),
            m(2, ALICE, edit(a1, "final")),
        ],
        "a delete by the sender empties the message; edits and reactions after it are ignored": [
            m(1, ALICE, text("oops", b2)),
            m(2, BOB, react(a1, "😮")),
            m(3, ALICE, edit(a1, "still oops")),
            m(4, ALICE, delete(a1)),
            m(5, ALICE, edit(a1, "back from the dead")),
            m(6, CAROL, react(a1, "👍")),
        ],
        "a delete by anyone else changes nothing": [
            m(1, ALICE, text("mine")),
            m(2, BOB, delete(a1)),
            m(3, CAROL, delete(a1)),
        ],
        "an envelope the server nulled shows as deleted; nothing applies to it": [
            m(1, ALICE, None, deleted=True),
            m(2, BOB, react(a1, "👍")),
            m(3, ALICE, edit(a1, "hi")),
            m(4, BOB, text("what was it?", a1)),
        ],
        "unknown types and unknown targets are not shown and change nothing": [
            m(1, ALICE, text("hi")),
            m(2, BOB, {"type": "poll", "question": "?"}),
            m(3, BOB, react(ref(BOB, 77), "👍")),
            m(4, ALICE, edit(ref(ALICE, 77), "x")),
            m(5, BOB, react(ref(BOB, 3), "👍")),
            m(6, BOB, {"type": "reaction", "to": a1, "emoji": "not one"}),
            m(7, ALICE, {"type": "edit", "to": a1, "text": 7}),
            m(8, ALICE, {"type": "delete", "to": {"seq": 1}}),
        ],
        "a relation before its target (by seq) is ignored": [
            m(1, BOB, react(ref(ALICE, 2), "👍")),
            m(2, ALICE, edit(ref(ALICE, 2), "early")),
            m(3, ALICE, text("target"), i=2),
        ],
        "a message that did not open is shown without content; nothing applies to it": [
            m(1, ALICE, None),
            m(2, BOB, react(a1, "👍")),
            m(3, ALICE, edit(a1, "x")),
            m(4, ALICE, delete(a1)),
        ],
        "a malformed text is shown without content; a relation is no target": [
            m(1, ALICE, {"type": "text", "text": ["not", "a", "string"]}),
            m(2, BOB, react(a1, "👍")),
            m(3, BOB, react(ref(BOB, 2), "👍")),
        ],
        "the first of two messages with one reference is the target": [
            m(1, ALICE, text("first")),
            m(2, ALICE, text("second"), i=1),
            m(3, ALICE, edit(a1, "first, edited")),
        ],
    }
    return [
        {
            "name": name,
            "messages": msgs,
            "shown": payloads.apply_payloads(json.loads(json.dumps(msgs))),
        }
        for name, msgs in cases.items()
    ]


def build() -> dict:
    fns = {
        "message_ref": payloads.message_ref,
        "text_payload": payloads.text_payload,
        "reaction_payload": payloads.reaction_payload,
        "edit_payload": payloads.edit_payload,
        "delete_payload": payloads.delete_payload,
    }

    def validated(payload: object) -> str | None:
        try:
            payloads.validate_payload(expand(payload))
        except ProtocolError as exc:
            return exc.code
        return None

    return {
        "comment": (
            "Shared vectors of chatclient/payloads.py and static/chat/payloads.js, written by "
            'tests/vectors/make_payloads.py. {"$repeat": [s, n]} is s repeated n times.'
        ),
        "builders": [[fn, args, compact(outcome(fns[fn], *args), args)] for fn, args in BUILDERS],
        "validate": [[name, payload, validated(payload)] for name, payload in VALIDATE],
        "emoji": [[s, payloads.is_reaction_emoji(s)] for s in EMOJI],
        "reduce": reduce_cases(),
    }


def main() -> None:
    path = HERE / "payloads.json"
    path.write_text(json.dumps(build(), ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
