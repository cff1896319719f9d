"""What a read mark costs the server (a bot sends one per message it handles): plain
statements, and no write, so no SQLite write lock, when the mark does not move."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.errors import ActionError
from accounts.models import User
from messaging.actions.read_marks import mark_read
from messaging.models import Membership
from tests.test_requests import rest_send

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_read_mark_takes_four_statements_and_one_that_does_not_move_writes_nothing(trio):
    alice, bob, carol, direct = trio
    for text in ("one", "two"):
        assert rest_send(alice, direct, text).status_code == 201
    bob_user = User.objects.get(pk=bob.user_id)
    with CaptureQueriesContext(connection) as moved:
        assert mark_read(bob_user, direct["id"], 99) == (2, [bob.user_id, alice.user_id])
    # the membership with last_seq, the conditional UPDATE, then whom to tell (members, blocks)
    assert len(moved.captured_queries) == 4, moved.captured_queries
    with CaptureQueriesContext(connection) as still:
        assert mark_read(bob_user, direct["id"], 1) is None
        assert mark_read(bob_user, direct["id"], 2) is None
    assert len(still.captured_queries) == 2, still.captured_queries
    assert not any(q["sql"].startswith(("BEGIN", "UPDATE")) for q in still.captured_queries)
    assert Membership.objects.get(user_id=bob.user_id, conversation_id=direct["id"]).read_up_to == 2

    carol_user = User.objects.get(pk=carol.user_id)
    with pytest.raises(ActionError) as refused:
        mark_read(carol_user, direct["id"], 1)
    assert refused.value.code == "not_member"
    with pytest.raises(ActionError) as refused:
        mark_read(carol_user, 999_999, 1)
    assert refused.value.code == "not_found"
