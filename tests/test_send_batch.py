"""Group commit with one multi-row INSERT (`actions.store_messages`): a batch's new rows go
in one statement, the checks still see the batch's own counters, and a replay that
passes the checks (so the INSERT hits the idempotency constraint) rolls the batch back
and stores it again row by row: every send answered, nothing stored twice, seq gapless."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.errors import ActionError
from accounts.models import User
from keys.models import Device
from messaging import actions
from messaging.models import Message
from tests.inprocess import seal


def item(user, conversation, text, n, client_msg_id=None):
    msg_id, envelope = seal(user, conversation, text, client_msg_id, n=n)
    sender = User.objects.get(pk=user.user_id)
    return (sender, conversation["id"], msg_id, envelope, Device.objects.get(pk=user.device_id))


def answers(results):
    return [r.code if isinstance(r, ActionError) else r.created for r in results]


@pytest.mark.django_db
def test_a_batch_is_one_insert_and_a_raced_replay_is_answered_once(trio):
    alice, bob, _, direct = trio
    first = item(alice, direct, "first", 1)
    [stored] = actions.store_messages([first])
    batch = [
        item(alice, direct, "two", 2),
        item(alice, direct, "two again", 2),  # stale: the batch's own row has n 2
        first,  # a resend: refused by the counter check, answered with the stored one
        item(alice, direct, "three", 3),
        item(bob, direct, "bob's first", 1),
    ]
    with CaptureQueriesContext(connection) as queries:
        results = actions.store_messages(batch)
    assert answers(results) == [True, "stale_counter", False, True, True]
    assert results[1].extra["n"] == 2 and results[2].message == stored.message
    inserts = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1, inserts
    # A resend of `first` with a new body and a higher n passes every check; its row
    # collides at the INSERT, so the batch is stored again one row at a time.
    replay = item(alice, direct, "first, resent", 5, client_msg_id=first[2])
    results = actions.store_messages(
        [item(alice, direct, "four", 4), replay, item(alice, direct, "six", 6)]
    )
    assert answers(results) == [True, False, True]
    assert results[1].message == stored.message
    rows = list(Message.objects.order_by("seq").values_list("seq", "n"))  # no seq hole
    assert rows == [(1, 1), (2, 2), (3, 3), (4, 1), (5, 4), (6, 6)]
