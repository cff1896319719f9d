"""chatclient/payloads.py on the shared vectors (tests/vectors/payloads.json, which
tests/js/payloads.test.mjs checks the browser against): builders, validation, the
reaction emoji rule and the reducer; the file is what make_payloads.py writes now; and the
reducer's rules by hand (the vectors alone would only prove the module agrees with itself)."""

from __future__ import annotations

import json

import pytest

from chatclient import payloads as P
from chatclient.errors import MessageTooLong, ProtocolError
from tests.vectors.known import load
from tests.vectors.make_payloads import ALICE, BOB, CAROL, build, cm, expand, ref

VECTOR = load("payloads.json")


def test_the_vector_file_is_what_the_module_writes_now():
    assert json.loads(json.dumps(build(), ensure_ascii=False)) == VECTOR


@pytest.mark.parametrize("case", VECTOR["builders"], ids=lambda c: f"{c[0]}{c[1]!r:.40}")
def test_builders_match_the_vectors(case):
    name, args, result = case
    fn = getattr(P, name)
    if "error" in result:
        with pytest.raises(ProtocolError) as caught:
            fn(*expand(args))
        assert caught.value.code == result["error"]
    else:
        assert fn(*expand(args)) == expand(result)


def test_validation_and_emoji_match_the_vectors():
    for name, payload, error in VECTOR["validate"]:
        obj = expand(payload)
        if error is None:
            assert P.validate_payload(obj) is obj, name
        else:
            with pytest.raises(ProtocolError) as caught:
                P.validate_payload(obj)
            assert caught.value.code == error, name
    for s, ok in VECTOR["emoji"]:
        assert P.is_reaction_emoji(s) is ok, s


def test_reducer_matches_the_vectors():
    for case in VECTOR["reduce"]:
        assert P.apply_payloads(case["messages"]) == case["shown"], case["name"]


def shown_by_seq(messages):
    return {entry["seq"]: entry for entry in P.apply_payloads(messages)}


def msg(seq, sender, payload, i=None, deleted=False):
    out = {"seq": seq, "sender_id": sender, "client_msg_id": cm(i or seq), "payload": payload}
    if deleted:
        out["deleted"] = True
    return out


def test_reducer_rules_by_hand():
    a1 = ref(ALICE, 1)
    shown = shown_by_seq(
        [
            msg(1, ALICE, P.text_payload("hi")),
            msg(2, BOB, P.text_payload("hey", a1)),
            msg(3, BOB, P.reaction_payload(a1, "👍")),
            msg(4, CAROL, P.reaction_payload(a1, "👍")),
            msg(5, CAROL, P.reaction_payload(a1, "👍", remove=True)),
            msg(6, BOB, P.edit_payload(a1, "forged")),
            msg(7, BOB, P.delete_payload(a1)),
            msg(8, ALICE, P.edit_payload(a1, "hi!")),
            msg(9, ALICE, {"type": "sticker", "to": a1}),
        ]
    )
    assert sorted(shown) == [1, 2]  # reactions, edits, deletes and unknown types: no entry
    assert shown[1]["reactions"] == {"👍": [BOB]}
    assert shown[1]["edited"] == "hi!" and not shown[1]["deleted"]
    assert shown[1]["payload"] == {"type": "text", "text": "hi"}
    assert shown[2]["reply_to"] == a1
    gone = shown_by_seq([msg(1, ALICE, P.text_payload("x")), msg(2, ALICE, P.delete_payload(a1))])
    assert gone == {1: {**gone[1], "deleted": True, "type": None, "payload": None}}
    nulled = shown_by_seq([msg(1, ALICE, None, deleted=True)])
    assert nulled[1]["deleted"] is True and nulled[1]["type"] is None


def test_long_texts_are_refused_with_the_length_and_small_edges_hold():
    with pytest.raises(MessageTooLong) as caught:
        P.edit_payload(ref(ALICE, 1), "a" * 16001)
    assert (caught.value.code, caught.value.length, caught.value.limit) == (
        "too_large",
        16001,
        16000,
    )
    assert P.text_payload("a" * 16000)["text"] == "a" * 16000
    assert not P.is_reaction_emoji("\ud83d")  # a lone surrogate
    assert not P.is_reaction_emoji(None)
    assert P.message_ref(BOB, cm(1)) == {"sender_id": BOB, "client_msg_id": cm(1)}
