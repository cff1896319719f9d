"""The device's persistent state (chatclient.state) shared by processes of one profile,
and the trust decisions kept in it (chatclient.trust), without a server."""

from __future__ import annotations

import json
import stat

import pytest

from chatclient import ordering
from chatclient.errors import ChatError
from chatclient.state import StateStore
from chatclient.trust import ACCEPTED, CHANGED, NOT_UPGRADED, TrustBook

KID = {name: (name[0] * 64) for name in ("alice", "bob", "fake", "carol", "dave")}


def two_processes(tmp_path):
    path = tmp_path / "state.json"
    return StateStore(path, device_id=3), StateStore(path, device_id=3)


def test_counters_never_collide_between_processes(tmp_path):
    first, second = two_processes(tmp_path)
    allocated = []
    for _ in range(3):
        allocated.append(first.allocate_counter(7))
        allocated.append(second.allocate_counter(7))
    assert allocated == [1, 2, 3, 4, 5, 6]
    assert first.allocate_counter(7, above=40) == 41  # after stale_counter n=40
    assert StateStore(tmp_path / "state.json", device_id=3).get("counters", 7) == 41
    assert stat.S_IMODE((tmp_path / "state.json").stat().st_mode) == 0o600


def test_saves_merge_each_processes_changes(tmp_path):
    listen, send = two_processes(tmp_path)
    listen.set_cursor(7, 10)
    listen.save()
    send.set_cursor(7, 4)  # older: the higher cursor wins
    send.set_cursor(9, 2)
    send.put("trust", 2, {"who": "bob"})
    send.save()
    listen.put("trust", 3, {"who": "carol"})
    listen.save()
    merged = StateStore(tmp_path / "state.json", device_id=3)
    assert merged.get("cursors", 7) == 10 and merged.get("cursors", 9) == 2
    assert merged.get("trust", 2) == {"who": "bob"} and merged.get("trust", 3) == {"who": "carol"}
    # Each process now sees the other's changes too.
    assert listen.get("trust", 2) == {"who": "bob"} and send.get("cursors", 7) == 10
    # A rollback moves a cursor back on purpose.
    send.set_cursor(7, 3, force=True)
    send.save()
    assert StateStore(tmp_path / "state.json", device_id=3).get("cursors", 7) == 3


def test_ledgers_merge_by_message_and_live_objects_follow(tmp_path):
    first, second = two_processes(tmp_path)
    judged = {"sender_id": 2, "sig_kid": "k" * 64, "v": 2}
    for store, (message_id, seq) in ((first, (1, 1)), (second, (2, 2))):
        ledger = store.live("ledgers", 7, ordering.Ledger.from_json, ordering.Ledger)
        verdict = ledger.judge(id=message_id, seq=seq, client_msg_id=f"m{seq}", n=seq, **judged)
        assert verdict == ordering.OK
        store.changed("ledgers", 7)
        store.save()
    first.save()  # a save takes in what the other process saved
    ledger = first.live("ledgers", 7, ordering.Ledger.from_json, ordering.Ledger)
    assert ledger.verdict_of(2) == ordering.OK  # the other process's judgement came in
    replay = ledger.judge(id=3, seq=3, client_msg_id="m1", n=3, **judged)
    assert replay == ordering.REPLAYED


def test_a_v1_state_file_and_another_devices_file(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(
        json.dumps({"device_id": 3, "cursors": {"7": 12}, "known_devices": {"dave": [KID["dave"]]}})
    )
    store = StateStore(path, device_id=3)
    assert store.get("cursors", 7) == 12 and store.get("legacy", "dave") == [KID["dave"]]
    assert StateStore(path, device_id=4).get("cursors", 7) is None
    path.write_text("not json")
    assert StateStore(path, device_id=3).get("cursors", 7) is None


def book(store=None, *, id_kid=KID["alice"]) -> TrustBook:
    return TrustBook(store or StateStore(device_id=1), user_id=1, username="alice", id_kid=id_kid)


def test_trust_on_first_use_then_a_change_waits_for_the_person():
    trust = book()
    assert trust.observe(2, "bob", KID["bob"]) is None
    assert trust.status(2) == ACCEPTED
    notice = trust.observe(2, "bob", KID["fake"])
    assert (notice.kind, notice.username) == ("identity_changed", "bob")
    assert trust.status(2) == CHANGED and trust.contact(2).id_kid == KID["bob"]
    assert trust.observe(2, "bob", KID["fake"]) is None  # told once
    with pytest.raises(ChatError):
        trust.set_verified(2)
    accepted = trust.accept(2)
    assert (accepted.id_kid, accepted.verified, accepted.earlier) == (
        KID["fake"],
        False,
        [KID["bob"]],
    )
    with pytest.raises(ChatError):
        trust.accept(2)
    # Listed without an identity after one was accepted: a change too.
    assert trust.observe(2, "bob", None).kind == "identity_changed"


def test_not_upgraded_users_and_the_upgrade_signature():
    trust = book()
    assert trust.observe(4, "dave", None) is None and trust.status(4) == NOT_UPGRADED
    trust.note_v1_devices(4, "dave", [KID["dave"]])
    assert trust.v1_kids(4, "dave") == [KID["dave"]]
    notice = trust.observe(4, "dave", KID["fake"], upgrade_ok=False)
    assert notice.kind == "identity_changed" and trust.status(4) == CHANGED
    other = book()
    other.note_v1_devices(4, "dave", [KID["dave"]])
    assert other.observe(4, "dave", KID["carol"], upgrade_ok=True).kind == "identity_upgraded"
    assert other.status(4) == ACCEPTED


def test_own_identity_and_the_hand_over_to_a_linked_device():
    trust = book()
    assert trust.contact(1).verified and trust.status(1) == ACCEPTED
    assert trust.observe(1, "alice", KID["fake"]).kind == "own_identity_changed"
    trust.observe(1, "alice", KID["alice"])
    trust.observe(2, "bob", KID["bob"])
    trust.set_verified(2)
    exported = trust.export()
    assert exported == {
        "identities": {
            "1": {"id_kid": KID["alice"], "verified": True},
            "2": {"id_kid": KID["bob"], "verified": True},
        }
    }
    linked = book()
    linked.adopt({**exported, "future": "ignored"})
    assert linked.contact(2).verified and linked.status(2) == ACCEPTED
    assert linked.observe(2, "bob", KID["bob"]) is None
