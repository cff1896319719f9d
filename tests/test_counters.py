"""Counters and roster heads of v2 sends over time (PROTOCOL §2, §9): `stale_counter` with
the stored highest `n`, `stale_roster` with the current head, sealing again, the order of
the checks, idempotent resends, and the group commit seeing each other's `n`. Real
database and channel layer, in-process; the same over real processes and PostgreSQL is in
test_live_relay.py."""

import json

import pytest
from asgiref.sync import sync_to_async

from accounts.errors import ActionError
from accounts.models import User
from keys.models import Device
from messaging import actions
from messaging.models import Conversation, Message
from tests.inprocess import change_roster, create_group, next_of, recipient_keys, seal


def rest_send(user, conversation, msg_id, envelope):
    return user.api.post(
        f"/api/conversations/{conversation['id']}/messages/",
        {"client_msg_id": msg_id, "envelope": envelope},
    )


def error_of(response, code):
    assert response.status_code == 409, response.content
    error = response.json_body["error"]
    assert error["code"] == code, error
    return error


@pytest.mark.django_db
def test_stale_counter_returns_the_stored_highest_and_stores_nothing(trio):
    alice, bob, _, direct = trio
    assert rest_send(alice, direct, *seal(alice, direct, "five", n=5)).status_code == 201
    for n in (5, 3, 1):
        error = error_of(
            rest_send(alice, direct, *seal(alice, direct, "again", n=n)), "stale_counter"
        )
        assert error["n"] == 5
    assert list(Message.objects.values_list("n", flat=True)) == [5]
    assert rest_send(alice, direct, *seal(alice, direct, "six", n=6)).status_code == 201
    assert rest_send(alice, direct, *seal(alice, direct, "gap", n=60)).status_code == 201
    error = error_of(rest_send(alice, direct, *seal(alice, direct, "late", n=59)), "stale_counter")
    assert error["n"] == 60
    # each device and each conversation counts for itself; bob starts at 1
    assert rest_send(bob, direct, *seal(bob, direct, "bob's first", n=1)).status_code == 201
    group = create_group(alice, [bob])
    assert rest_send(alice, group, *seal(alice, group, "first here", n=1)).status_code == 201
    assert list(Message.objects.order_by("id").values_list("n", flat=True)) == [
        5,
        6,
        60,
        1,
        1,
    ]


@pytest.mark.django_db
def test_a_second_device_has_its_own_counter_and_v1_rows_do_not_count(trio, device_keys):
    alice, bob, _, direct = trio
    assert rest_send(alice, direct, *seal(alice, direct, "laptop", n=7)).status_code == 201
    Message.objects.create(  # stored before the upgrade: v1, no n
        conversation_id=direct["id"],
        seq=2,
        sender_id=bob.user_id,
        sender_device_id=bob.device_id,
        client_msg_id="00000000-0000-4000-8000-000000000001",
        envelope={"v": 1},
        n=None,
    )
    Conversation.objects.filter(pk=direct["id"]).update(last_seq=2)
    assert rest_send(bob, direct, *seal(bob, direct, "v2 now", n=1)).status_code == 201
    alice.register_device(device_keys(), "phone")
    assert rest_send(alice, direct, *seal(alice, direct, "phone", n=1)).status_code == 201
    rows = Message.objects.order_by("seq").values_list("sender_device_id", "n")
    assert list(rows)[-1] == (alice.device_id, 1)


@pytest.mark.django_db
def test_resends_are_answered_whatever_the_counter(trio):
    alice, bob, _, direct = trio
    msg_id, envelope = seal(alice, direct, "once", n=1)
    first = rest_send(alice, direct, msg_id, envelope)
    assert first.status_code == 201
    assert rest_send(alice, direct, *seal(alice, direct, "later", n=2)).status_code == 201
    for body in (envelope, seal(alice, direct, "other", client_msg_id=msg_id, n=1)[1]):
        again = rest_send(alice, direct, msg_id, body)  # n 1 is below the stored 2: still a replay
        assert again.status_code == 200 and again.json_body["message"] == first.json_body["message"]
    assert Message.objects.count() == 2


@pytest.mark.django_db
def test_stale_roster_then_seal_again_with_the_same_n(make_user):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    group = create_group(alice, [bob])
    msg_id, envelope = seal(bob, group, "sealed for two", n=4)
    changed = change_roster(alice, group, "add", [carol])
    error = error_of(rest_send(bob, group, msg_id, envelope), "stale_roster")
    assert error["head"] == changed["roster_head"] != group["roster_head"]
    assert not Message.objects.exists()
    # the same message, sealed again for the roster's members, keeps its n
    msg_id, envelope = seal(bob, changed, "sealed for three", client_msg_id=msg_id, n=4)
    response = rest_send(bob, changed, msg_id, envelope)
    assert response.status_code == 201
    assert set(response.json_body["message"]["envelope"]["keys"]) == set(
        recipient_keys(bob, changed)
    )
    assert Message.objects.get().n == 4


@pytest.mark.django_db
def test_checks_come_in_order_head_counter_keys(make_user):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    group = create_group(alice, [bob])
    assert rest_send(alice, group, *seal(alice, group, "n 3", n=3)).status_code == 201
    old = seal(alice, group, "stale head and counter", n=2)
    changed = change_roster(alice, group, "add", [carol])
    assert error_of(rest_send(alice, changed, *old), "stale_roster")  # head before counter
    two_keys = recipient_keys(alice, group)  # carol's device missing
    late = seal(alice, changed, "stale counter and keys", n=3, recipients=two_keys)
    assert error_of(rest_send(alice, changed, *late), "stale_counter")["n"] == 3
    short = seal(alice, changed, "keys only", n=4, recipients=two_keys)
    error = error_of(rest_send(alice, changed, *short), "stale_devices")
    assert error["missing"] == [carol.keys.enc_kid]
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_one_batch_sees_its_own_counters(trio):
    """Group commit: several sends of one device in one transaction see each other's n."""
    alice, bob, _, direct = trio
    sender = User.objects.get(pk=alice.user_id)
    device = Device.objects.get(pk=alice.device_id)
    items = []
    for n in (1, 2, 2, 3, 1, 4):
        msg_id, envelope = seal(alice, direct, f"n {n}", n=n)
        items.append((sender, direct["id"], msg_id, envelope, device))
    items.append(items[1])  # a resend of the second inside the same batch
    results = actions.store_messages(items)
    codes = [r.code if isinstance(r, ActionError) else r.created for r in results]
    assert codes == [True, True, "stale_counter", True, "stale_counter", True, False]
    assert [results[2].extra["n"], results[4].extra["n"]] == [2, 3]
    assert results[6].message == results[1].message
    stored = list(Message.objects.order_by("seq").values_list("seq", "n"))
    assert stored == [(1, 1), (2, 2), (3, 3), (4, 4)]


@pytest.mark.django_db(transaction=True)
async def test_websocket_errors_carry_client_msg_id_head_and_n(make_user):
    alice, bob, carol = [await sync_to_async(make_user)(n) for n in ("alice", "bob", "carol")]
    group = await sync_to_async(create_group)(alice, [bob])
    ws = alice.socket()
    assert (await ws.connect())[0]

    async def send(msg_id, envelope):
        frame = {"type": "send", "conversation": group["id"], "client_msg_id": msg_id}
        await ws.send_to(text_data=json.dumps({**frame, "envelope": envelope}))

    await send(*await sync_to_async(seal)(alice, group, "n 9", n=9))
    assert (await next_of(ws, "ack"))["seq"] == 1
    msg_id, envelope = await sync_to_async(seal)(alice, group, "n 8", n=8)
    await send(msg_id, envelope)
    error = await next_of(ws, "error")
    assert (error["code"], error["n"], error["client_msg_id"]) == ("stale_counter", 9, msg_id)
    changed = await sync_to_async(change_roster)(alice, group, "add", [carol])
    msg_id, envelope = await sync_to_async(seal)(alice, group, "old head", n=10)
    await send(msg_id, envelope)
    error = await next_of(ws, "error")
    assert (error["code"], error["head"], error["client_msg_id"]) == (
        "stale_roster",
        changed["roster_head"],
        msg_id,
    )
    await send(*await sync_to_async(seal)(alice, changed, "new head", client_msg_id=msg_id, n=10))
    ack = await next_of(ws, "ack")
    assert ack["client_msg_id"] == msg_id and ack["seq"] == 2
    assert [m.n async for m in Message.objects.order_by("seq")] == [9, 10]
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_burst_on_one_socket_keeps_n_rising_with_seq(trio):
    """45 sends without waiting for acks (several per batch; within the rate limit's
    burst); a repeated n in the middle is refused, the rest is stored with n rising with
    seq."""
    alice, bob, _, direct = trio
    ns = list(range(1, 21)) + [20] + list(range(21, 45))
    sealed = [await sync_to_async(seal)(alice, direct, f"burst {n}", n=n) for n in ns]
    ws = alice.socket()
    assert (await ws.connect())[0]
    for msg_id, envelope in sealed:
        frame = {"type": "send", "conversation": direct["id"], "client_msg_id": msg_id}
        await ws.send_to(text_data=json.dumps({**frame, "envelope": envelope}))
    acks, errors = [], []
    while len(acks) + len(errors) < len(sealed):
        frame = await ws.receive_json_from(timeout=10)
        if frame["type"] == "ack":
            acks.append(frame)
        elif frame["type"] == "error":
            errors.append(frame)
    assert [(e["code"], e["n"], e["client_msg_id"]) for e in errors] == [
        ("stale_counter", 20, sealed[20][0])
    ]
    stored = [(m.seq, m.n) async for m in Message.objects.order_by("seq")]
    assert stored == [(seq, seq) for seq in range(1, 45)]
    await ws.disconnect()
