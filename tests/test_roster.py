"""chatclient.roster: record strings and hashes, shapes, the rules of §8, chain verification
in the server's order, incremental verification, persisted states, and the known-answer
roster vector (every single-field tamper refused)."""

from __future__ import annotations

import hashlib
import json
import uuid
from functools import cache

import pytest

from chatclient import roster
from chatclient.protocol import b64encode
from chatclient.roster import GENESIS, RosterError, RosterState
from tests.vectors.known import fixed_keys, load, roster_signing_key

GID = "9b2c4e6f-1a3d-4c5b-8e7f-0a1b2c3d4e5f"


@cache
def vector() -> dict:
    return load("roster.json")


def vector_key():
    return roster_signing_key(vector()["devices"], vector()["identities"])


def keys_of(*names):
    """signing_key accepting exactly the fixed devices named, for any ``by``."""
    by_kid = {fixed_keys()[n].sig_kid: fixed_keys()[n].sig_public for n in names}
    return lambda record: by_kid.get(record["sig_kid"])


def make(n, prev, op, subjects, by, title=None, device="alice", gid=GID):
    return roster.make_record(
        fixed_keys()[device], gid=gid, n=n, prev=prev, op=op, subjects=subjects, by=by, title=title
    )


def chain(*steps, gid=GID):
    """Records made from (op, subjects, by, title, device) steps, each after the last."""
    records, prev = [], GENESIS
    for n, (op, subjects, by, title, device) in enumerate(steps):
        records.append(make(n, prev, op, subjects, by, title, device, gid))
        prev = records[-1]["hash"]
    return records


def code_of(records, signing_key=None, gid=GID, state=None):
    try:
        roster.verify_chain(gid, records, signing_key or keys_of("alice", "bob"), state=state)
    except RosterError as exc:
        return exc.code
    return "ok"


# --- strings, hashes, records -------------------------------------------------------------


def test_roster_string_and_hash():
    title_hash = hashlib.sha256("Ω".encode()).hexdigest()
    text = roster.roster_string(GID, 3, "ab" * 32, "add", [2, 10], 1, "Ω")
    assert text == f"e2ee-chat/v2/roster|{GID}|3|{'ab' * 32}|add|2,10|1|{title_hash}"
    assert roster.title_hash(None) == hashlib.sha256(b"").hexdigest()
    assert roster.roster_string(GID, 0, GENESIS, "title", [], 1, None).endswith(
        "|title||1|" + hashlib.sha256(b"").hexdigest()
    )
    record = make(0, GENESIS, "create", [3, 1, 2, 1], 1, "Ω")
    assert record["subjects"] == [1, 2, 3]
    expected = roster.roster_string(GID, 0, GENESIS, "create", [1, 2, 3], 1, "Ω")
    assert record["hash"] == hashlib.sha256(f"{expected}|{record['sig']}".encode()).hexdigest()
    assert set(record) == roster.SIGNED_FIELDS
    assert roster.verify_record_signature(GID, record, fixed_keys()["alice"].sig_public)
    assert not roster.verify_record_signature(GID, record, fixed_keys()["bob"].sig_public)


def test_make_record_refuses_a_bad_gid_or_shape():
    for gid in [GID.upper(), str(uuid.uuid1()), "x"]:
        with pytest.raises(RosterError):
            make(0, GENESIS, "create", [1], 1, gid=gid)
    with pytest.raises(RosterError):
        make(0, GENESIS, "rename", [1], 1)


def test_validate_record_shapes():
    record = make(0, GENESIS, "create", [1, 2], 1, "t")
    roster.validate_record(record)
    roster.validate_record({**record, "created": "2024-01-01T00:00:00Z"}, served=True)
    roster.validate_record(record, served=True)
    bad = [
        {**record, "created": "2024-01-01T00:00:00Z"},  # not served: exactly nine fields
        {**record, "title": "\ud800"},  # a lone surrogate has no UTF-8
        {**record, "title": "x" * 201},
        {**record, "n": True},
        {**record, "by": 0},
        {**record, "subjects": [1, 2**53]},
        {**record, "sig": ""},
        {**record, "sig": "not base64"},
        [record],
    ]
    for case in bad:
        with pytest.raises(RosterError) as exc:
            roster.validate_record(case)
        assert exc.value.code == "bad_request"
    roster.validate_record({**record, "title": "😀" * 200})  # counted in code points


# --- rules --------------------------------------------------------------------------------


def test_a_valid_chain_gives_members_owner_title_and_heads():
    records = chain(
        ("create", [1, 2, 3], 1, "t", "alice"),
        ("add", [4], 1, None, "alice"),
        ("remove", [2], 1, None, "alice"),
        ("title", [], 3, "u", "bob"),
    )
    state = roster.verify_chain(GID, records, keys_of("alice", "bob"))
    assert (state.members, state.owner, state.title, state.n, state.head) == (
        {1, 3, 4},
        1,
        "u",
        3,
        records[-1]["hash"],
    )
    assert state.heads == {r["hash"]: r["n"] for r in records}
    assert state.member_at(2, records[1]["hash"]) and not state.member_at(2, records[2]["hash"])
    assert state.joined_at(4) == 1 and state.joined_at(2) is None


def test_owner_hand_over_prefers_the_earliest_join_then_the_smallest_id():
    records = chain(
        ("create", [1, 9], 1, None, "alice"),
        ("add", [3, 5], 1, None, "alice"),
        ("remove", [9], 1, None, "alice"),
        ("add", [9], 1, None, "alice"),  # 9 joins again: its latest join is now n 3
        ("leave", [1], 1, None, "alice"),
    )
    assert roster.verify_chain(GID, records, keys_of("alice")).owner == 3


def test_the_last_member_leaving_closes_the_group():
    records = chain(("create", [1], 1, None, "alice"), ("leave", [1], 1, None, "alice"))
    state = roster.verify_chain(GID, records, keys_of("alice"))
    assert state.closed and state.owner is None and state.members == set()
    after = make(2, records[-1]["hash"], "add", [2], 1)
    assert code_of(records + [after]) == "bad_request"


def test_verify_record_checks_in_the_servers_order():
    records = chain(("create", [1, 2], 1, None, "alice"))
    state = roster.verify_chain(GID, records, keys_of("alice", "bob"))
    # Not allowed (bob does not own the group) and not signed by an acceptable key:
    # the signature is checked before the rules.
    record = make(1, records[0]["hash"], "add", [3], 2, device="bob")
    with pytest.raises(RosterError) as exc:
        roster.verify_record(state, record, keys_of("alice"))
    assert exc.value.code == "bad_signature"
    with pytest.raises(RosterError) as exc:
        roster.verify_record(state, record, keys_of("alice", "bob"))
    assert exc.value.code == "forbidden"
    # Out of place and with a wrong hash: the position comes first.
    stale = {**make(2, records[0]["hash"], "add", [3], 1), "hash": "0" * 64}
    with pytest.raises(RosterError) as exc:
        roster.verify_record(state, stale, keys_of("alice"))
    assert exc.value.code == "stale_roster"
    assert state.n == 0 and state.members == {1, 2}  # unchanged by the failures


def test_signing_key_none_is_bad_signature():
    records = chain(("create", [1], 1, None, "alice"))
    assert code_of(records, signing_key=lambda record: None) == "bad_signature"


def test_a_key_whose_kid_is_not_the_records_sig_kid_does_not_sign_it():
    record = chain(("create", [1], 1, None, "alice"))[0]
    relabelled = {**record, "sig_kid": fixed_keys()["bob"].sig_kid}
    alice = fixed_keys()["alice"].sig_public
    assert code_of([relabelled], signing_key=lambda r: alice) == "bad_signature"
    assert code_of([record], signing_key=lambda r: alice) == "ok"


def test_verify_chain_needs_a_uuid4_and_its_own_state():
    records = chain(("create", [1], 1, None, "alice"))
    assert code_of(records, gid=GID.upper()) == "bad_request"
    other = RosterState(gid=str(uuid.UUID(int=8, version=4)))
    assert code_of(records, state=other) == "bad_request"


# --- incremental verification and persisted states ----------------------------------------


def test_continuing_from_a_state_gives_the_same_result_and_leaves_it_unchanged():
    records = vector()["records"]
    key = vector_key()
    whole = roster.verify_chain(vector()["gid"], records, key)
    first = roster.verify_chain(vector()["gid"], records[:4], key)
    before = first.to_json()
    rest = roster.verify_chain(vector()["gid"], records[4:], key, state=first)
    assert rest.to_json() == whole.to_json() and first.to_json() == before
    # The state survives JSON text and continues the same way.
    restored = RosterState.from_json(json.loads(json.dumps(first.to_json())))
    assert restored.to_json() == before and restored.members == first.members
    again = roster.verify_chain(vector()["gid"], records[4:], key, state=restored)
    assert again.to_json() == whole.to_json()
    # Records before the state's head are not the next link.
    assert code_of(records[3:], signing_key=key, gid=vector()["gid"], state=first) == "stale_roster"


def test_copy_is_independent():
    state = roster.verify_chain(vector()["gid"], vector()["records"][:2], vector_key())
    copied = state.copy()
    roster.verify_record(copied, vector()["records"][2], vector_key(), served=True)
    assert state.n == 1 and copied.n == 2 and state.title != copied.title


# --- the known-answer vector --------------------------------------------------------------


def test_vector_chain_verifies_to_the_stated_states():
    v = vector()
    state = RosterState(gid=v["gid"])
    key = vector_key()
    for record, expected in zip(v["records"], v["states"], strict=True):
        roster.verify_record(state, record, key, served=True)
        got = {
            "n": state.n,
            "head": state.head,
            "members": sorted(state.members),
            "owner": state.owner,
            "title": state.title,
            "closed": state.closed,
        }
        assert got == expected
    assert state.to_json() == v["final"]
    assert roster.verify_chain(v["gid"], v["records"], key).to_json() == v["final"]
    for case in v["member_at"]:
        assert state.member_at(case["user"], case["head"]) is case["expect"], case


def test_vector_tampers_are_refused_with_the_stated_error():
    v = vector()
    fields = {name.split(".")[1] for name in (t["name"] for t in v["tampered"]) if "." in name}
    assert fields >= roster.SIGNED_FIELDS
    assert {t["name"].split(".")[0] for t in v["tampered"] if "." in t["name"]} == {
        str(i) for i in range(len(v["records"]))
    }
    for case in v["tampered"]:
        records = v["records"][: case["prefix"]] + case["tail"]
        got = code_of(records, signing_key=vector_key(), gid=case.get("gid", v["gid"]))
        assert got == case["error"], case["name"]


def test_vector_unsigned_changes_are_accepted():
    v = vector()
    for case in v["accepted"]:
        records = v["records"][: case["prefix"]] + case["tail"]
        assert code_of(records, signing_key=vector_key(), gid=v["gid"]) == "ok", case["name"]


def test_vector_signing_key_refuses_a_device_certified_by_another_identity():
    v = vector()
    rogue = v["devices"]["1"][2]
    assert rogue["sig_kid"] == fixed_keys()["bob"].sig_kid
    assert vector_key()({"by": 1, "sig_kid": rogue["sig_kid"]}) is None
    assert vector_key()({"by": 2, "sig_kid": rogue["sig_kid"]}) is not None
    assert b64encode(fixed_keys()["bob"].sig_spki) == rogue["sig_spki"]
