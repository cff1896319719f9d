"""chatclient.ordering: the §9 ledger on the known-answer scenarios (each step's verdict,
rollbacks, re-flagged v1 messages, forgetting, persistence) and its edge cases."""

from __future__ import annotations

import json

import pytest

from chatclient.ordering import OK, OUT_OF_ORDER, REPLAYED, ROLLBACK, Ledger
from tests.vectors.known import load

SCENARIOS = load("ordering.json")["scenarios"]


def run(steps) -> Ledger:
    """Run a scenario's steps, asserting each stated result; return the ledger."""
    ledger = Ledger()
    for step in steps:
        if "judge" in step:
            assert ledger.judge(**step["judge"]) == step["verdict"], step
        elif "is_rollback" in step:
            assert ledger.is_rollback(step["is_rollback"]) is step["expect"], step
        elif "verdict_of" in step:
            assert ledger.verdict_of(step["verdict_of"]) == step["expect"], step
        elif "take_changed" in step:
            assert ledger.take_changed() == step["expect"], step
        elif "forget_from" in step:
            ledger.forget_from(step["forget_from"])
        else:
            ledger = Ledger.from_json(json.loads(json.dumps(ledger.to_json())))
    return ledger


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(scenario):
    assert run(scenario["steps"]).to_json() == scenario["ledger"]


def test_scenarios_cover_every_verdict():
    verdicts = {step["verdict"] for s in SCENARIOS for step in s["steps"] if "judge" in step}
    assert verdicts == {OK, REPLAYED, OUT_OF_ORDER, ROLLBACK}


def message(id_, seq, n, *, sender=1, cmid=None, kid="a" * 64, v=2):
    return {
        "id": id_,
        "seq": seq,
        "sender_id": sender,
        "client_msg_id": cmid or f"00000000-0000-4000-8000-{id_:012d}",
        "sig_kid": kid,
        "v": v,
        "n": n,
    }


def test_a_rollback_is_not_recorded():
    ledger = Ledger()
    assert ledger.judge(**message(1, 1, 1)) == OK
    assert ledger.judge(**message(2, 1, 2)) == ROLLBACK
    assert ledger.verdict_of(2) is None
    assert ledger.judge(**message(2, 2, 2)) == OK


def test_a_flagged_message_still_holds_its_seq():
    ledger = Ledger()
    assert ledger.judge(**message(1, 1, 5)) == OK
    assert ledger.judge(**message(2, 2, 4)) == OUT_OF_ORDER
    assert ledger.judge(**message(3, 2, 6)) == ROLLBACK
    assert ledger.is_rollback(1)


def test_only_ok_messages_count_for_counters():
    ledger = Ledger()
    assert ledger.judge(**message(1, 1, 5)) == OK
    assert ledger.judge(**message(2, 2, 4)) == OUT_OF_ORDER
    assert ledger.judge(**message(3, 3, 6)) == OK  # 4 was not shown as genuine


def test_a_v2_message_needs_a_counter():
    with pytest.raises(ValueError):
        Ledger().judge(**message(1, 1, None))


def test_forget_from_keeps_what_is_below():
    ledger = Ledger()
    for i in range(1, 6):
        ledger.judge(**message(i, i, i))
    ledger.forget_from(3)
    assert [row[0] for row in ledger.to_json()] == [1, 2]
    assert ledger.judge(**message(9, 3, 3)) == OK
    assert ledger.judge(**message(10, 4, 2)) == OUT_OF_ORDER
