"""What the terminal shows for each event: flagged messages never as text, one line per
notice, JSON for scripts."""

from __future__ import annotations

import json

from chatclient.display import as_json, event_line
from chatclient.events import (
    ConversationTampered,
    IncomingMessage,
    Rollback,
    RosterChange,
    TrustNotice,
)
from tests.vectors.known import load


def message(status: str, **fields) -> IncomingMessage:
    base = {
        "id": 5,
        "conversation": 7,
        "seq": 3,
        "sender_id": 2,
        "sender": "bob",
        "sender_device": 21,
        "client_msg_id": "c",
        "created": "2026-12-01T00:00:00.000Z",
        "status": status,
        "own": False,
        "content": {"type": "text", "text": "Sell everything now."},
    }
    return IncomingMessage(**{**base, **fields})


def test_flagged_messages_are_shown_as_such_never_as_text():
    for status, words in (
        ("replayed", "replayed copy of message 4"),
        ("out_of_order", "out of order"),
        ("unverified", "could not be decrypted or verified"),
    ):
        event = message(status, replay_of=4 if status == "replayed" else None)
        line = event_line(event)
        assert words in line and "Sell" not in line
        assert json.loads(as_json(event))["text"] is None
        assert json.loads(as_json(event))["status"] == status
    ok = message("ok", note="earlier_identity")
    assert event_line(ok).endswith(
        "Sell everything now. [signed under an earlier identity of the sender]"
    )


def test_notices_are_one_line_each():
    lines = [
        event_line(TrustNotice("identity_changed", "bob", 2, "changed")),
        event_line(TrustNotice("own_uncertified_device", "alice", 1, "device 9 (x)")),
        event_line(
            RosterChange(7, 2, "remove", 1, "alice", (3,), ("you",), None, "alice removed you")
        ),
        event_line(ConversationTampered(7, "the server's members differ")),
        event_line(Rollback(7, 12, "fork")),
    ]
    assert all("\n" not in line for line in lines)
    assert "identity accept bob" in lines[0] and "YOUR ACCOUNT" in lines[1]
    assert lines[2] == "-- [7] alice removed you" and "tampered" in lines[3]
    roster = json.loads(
        as_json(RosterChange(7, 2, "leave", 3, "carol", (3,), ("carol",), None, "carol left"))
    )
    assert roster["event"] == "roster" and roster["text"] == "carol left"


def test_file_messages_show_name_size_and_caption_and_json_hides_the_key():
    meta = load("attachments.json")["payloads"]["valid"][0]["file"]
    payload = {"type": "file", "file": {**meta, "name": "../evil\u202etxt.exe"}, "text": "hi\x1b"}
    line = event_line(message("ok", content=payload))
    assert line.endswith("bob: [file] eviltxt.exe (68.4 KiB, image/jpeg; id 5) hi\ufffd")
    event = json.loads(as_json(message("ok", content=payload, blobs=(meta["blob"],))))
    assert event["blobs"] == [meta["blob"]] and event["file"]["size"] == 70000
    for shown in (event["file"], event["content"]["file"]):
        assert "key" not in shown and "prefix" not in shown and shown["thumb"] == meta["thumb"]
    broken = {**payload, "file": {**meta, "size": -1}}
    line = event_line(message("ok", content=broken))
    assert "!! a file this client refused" in line and "evil" not in line
    assert "key" not in json.loads(as_json(message("ok", content=broken)))["file"]
