"""The group commit on PostgreSQL (issue 15, finding 10): one item of a batch that fails at
the database must not take the others with it, and nothing acked may be lost.

On PostgreSQL a failed statement aborts the whole transaction until it is rolled back to
a savepoint. `store_messages` stores a batch in one transaction; if an item's failing
statement ran outside a savepoint, the items after it failed too and the COMMIT became a
ROLLBACK, losing items already reported stored (acked). Each item now has its own
savepoint.

`test_group_commit_on_postgresql` (marked `processes`) runs `test_batch_item_failing_at_
the_database` in a pytest of its own whose settings point at a fresh database of the
session's PostgreSQL server (settings are read once per process); on SQLite that test
skips.
"""

import os

import pytest
from django.db import connection

from accounts.models import User
from messaging.actions.sending import SendOutcome, store_messages
from messaging.models import Message
from tests.inprocess import seal
from tests.support.postgres_rerun import rerun_on_postgresql

INNER = "test_batch_item_failing_at_the_database"


@pytest.mark.processes
def test_group_commit_on_postgresql(postgres_server):
    rerun_on_postgresql(f"{__file__}::{INNER}", postgres_server.new_database("commit"))


def fail_at_the_server_on(client_msg_id: str):
    """A `connection.execute_wrapper`: the first query naming `client_msg_id` is preceded by
    a statement PostgreSQL refuses (division by zero), as a lock or statement timeout on
    that query would be. The server then aborts the transaction, as for any failure."""
    state = {"failed": False}

    def wrapper(execute, sql, params, many, context):
        if not state["failed"] and client_msg_id in (params or ()):
            state["failed"] = True
            execute("SELECT 1 / 0", (), False, context)
        return execute(sql, params, many, context)

    return wrapper, state


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="PostgreSQL only (run by test_group_commit_on_postgresql)",
)
@pytest.mark.django_db(transaction=True)
def test_batch_item_failing_at_the_database(make_user):
    assert connection.vendor == "postgresql"
    alice = make_user("alice")  # one device: key generation is the slow part
    for name in ("bob", "carol", "dave"):
        make_user(name, with_device=False)
    first, second, third = (
        alice.api.post("/api/conversations/", {"members": [name]}).json_body["conversation"]
        for name in ("bob", "carol", "dave")
    )
    assert first["id"] < second["id"] < third["id"]  # the batch's order
    # The second is refused (stale_roster: a direct conversation's head is ""), after which
    # the lookup of a stored replay, outside the checks' own savepoint, fails at the database.
    refused_id, refused = seal(alice, second, "refused", head=alice.keys.enc_kid)
    sealed = [seal(alice, first, "before"), (refused_id, refused), seal(alice, third, "after")]
    sender = User.objects.get(pk=alice.user_id)
    items = [
        (sender, conversation["id"], msg_id, envelope, None)
        for conversation, (msg_id, envelope) in zip((first, second, third), sealed, strict=True)
    ]
    wrapper, state = fail_at_the_server_on(refused_id)
    with connection.execute_wrapper(wrapper):
        results = store_messages(items)
    assert state["failed"]
    before, failed, after = results
    stored = set(Message.objects.values_list("client_msg_id", flat=True))
    acked = {r.message["client_msg_id"] for r in results if isinstance(r, SendOutcome)}
    assert acked <= stored, "an acked message was lost"  # the old code lost `before`
    assert isinstance(failed, Exception) and refused_id not in stored
    # The items around the failing one are stored, not failed with it.
    assert isinstance(before, SendOutcome) and before.created
    assert isinstance(after, SendOutcome) and after.created
    assert stored == acked
    assert before.message["seq"] == after.message["seq"] == 1
