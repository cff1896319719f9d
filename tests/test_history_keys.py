"""History keys for a linked device (PROTOCOL §7.3): one of a user's devices gives another
of hers the content keys of messages she can read; the server serves them as that
device's entry in `keys` in history pages and `sync`, to her only. Every refusal stores
nothing.

Messages are stored the way the send path stores them (sealed v2 envelopes, gapless
seq), written straight to the database so that these tests do not depend on sending.
"""

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chatclient import protocol
from keys.models import Device
from messaging.models import Conversation, HistoryKey, Membership, Message
from tests.inprocess import ApiClient, v1_device

db = pytest.mark.django_db
live_db = pytest.mark.django_db(transaction=True)


def error_code(response):
    return response.json_body["error"]["code"]


def store(sender, sender_keys, conversation_id: int, text: str, recipients) -> Message:
    """A v2 message from `sender`'s device `sender_keys`, sealed for `recipients`
    (DeviceKeys), stored at the conversation's next seq."""
    msg_id = protocol.new_client_msg_id()
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
        n = Message.objects.filter(conversation=conversation).count() + 1
        envelope = protocol.seal_envelope(
            protocol.text_message(text),
            conversation_id=conversation_id,
            sender_id=sender.user_id,
            client_msg_id=msg_id,
            n=n,
            head="",
            sender_keys=sender_keys,
            recipient_keys={k.enc_kid: k.enc_public for k in recipients},
        )
        conversation.last_seq += 1
        conversation.save(update_fields=["last_seq"])
        sender_device = Device.objects.get(sig_kid=sender_keys.sig_kid)
        return Message.objects.create(
            conversation=conversation,
            seq=conversation.last_seq,
            sender_id=sender.user_id,
            sender_device=sender_device,
            client_msg_id=msg_id,
            envelope=envelope,
            n=n,
        )


def wraps_for(messages, reader_keys, new_keys) -> list[dict]:
    """What the approving device posts: K of each message rewrapped for the new device."""
    return [
        {
            "message": m.pk,
            "ek": protocol.rewrap_content_key(m.envelope, reader_keys, new_keys.enc_public),
        }
        for m in messages
    ]


def post_wraps(user, device_id, wraps, acting=None, headers=None):
    if headers is None and acting is not None:
        headers = {"X-Device-Id": str(acting)}
    return user.api.post(
        f"/api/devices/{device_id}/history-keys/", {"wraps": wraps}, headers=headers
    )


@pytest.fixture
def linked(make_user, device_keys):
    """alice (old device A1, new device A2) and bob in a direct conversation holding four
    messages sealed before A2 existed; bob and carol in another."""
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    a1_keys, a1 = alice.keys, alice.device_id
    direct = alice.api.post("/api/conversations/", {"members": ["bob"]}).json_body["conversation"]
    messages = [
        store(bob, bob.keys, direct["id"], f"before you linked {i}", [a1_keys, bob.keys])
        for i in range(3)
    ]
    messages.append(store(alice, a1_keys, direct["id"], "mine", [a1_keys, bob.keys]))
    alice.register_device(device_keys(), "new laptop")
    a2_keys, a2 = alice.keys, alice.device_id
    other = bob.api.post("/api/conversations/", {"members": ["carol"]}).json_body["conversation"]
    foreign = store(bob, bob.keys, other["id"], "not for alice", [bob.keys, carol.keys])
    return {
        "alice": alice,
        "bob": bob,
        "carol": carol,
        "a1": a1,
        "a1_keys": a1_keys,
        "a2": a2,
        "a2_keys": a2_keys,
        "direct": direct,
        "messages": messages,
        "foreign": foreign,
    }


def opened(message: dict, reader_keys, sender_keys) -> str:
    plaintext = protocol.open_envelope(
        message["envelope"],
        conversation_id=message["conversation"],
        sender_id=message["sender_id"],
        client_msg_id=message["client_msg_id"],
        device_keys=reader_keys,
        sig_public=sender_keys.sig_public,
    )
    return plaintext["text"]


@db
def test_wraps_are_served_in_history_to_the_new_device_only(linked):
    alice, bob, direct = linked["alice"], linked["bob"], linked["direct"]
    a1_keys, a2_keys, messages = linked["a1_keys"], linked["a2_keys"], linked["messages"]
    history = f"/api/conversations/{direct['id']}/messages/"
    before = alice.api.get(history).json_body["messages"]
    assert all(a2_keys.enc_kid not in m["envelope"]["keys"] for m in before)

    wraps = wraps_for(messages, a1_keys, a2_keys)
    stored = post_wraps(alice, linked["a2"], wraps, acting=linked["a1"])
    assert stored.status_code == 200 and stored.json_body == {"stored": 4}

    page = alice.api.get(history).json_body["messages"]
    for message, wrap, original in zip(page, wraps, messages, strict=True):
        keys = message["envelope"]["keys"]
        assert keys == {**original.envelope["keys"], a2_keys.enc_kid: wrap["ek"]}
        sender = bob.keys if message["sender"] == "bob" else a1_keys
        assert opened(message, a2_keys, sender) == opened(message, a1_keys, sender)
    assert [opened(m, a2_keys, bob.keys) for m in page[:3]] == [
        f"before you linked {i}" for i in range(3)
    ]
    # Bob reads the envelopes as they were sent.
    for message, original in zip(bob.api.get(history).json_body["messages"], messages, strict=True):
        assert message["envelope"] == original.envelope
    # The stored envelope itself is unchanged.
    assert all(Message.objects.get(pk=m.pk).envelope == m.envelope for m in messages)

    # The first wrap for a (message, device) wins; a repeat stores nothing.
    again = post_wraps(alice, linked["a2"], wraps_for(messages, a1_keys, a2_keys), linked["a1"])
    assert again.json_body == {"stored": 0}
    assert (
        alice.api.get(history).json_body["messages"][0]["envelope"]["keys"][a2_keys.enc_kid]
        == wraps[0]["ek"]
    )

    # A revoked device's wraps are no longer served.
    assert alice.api.delete(f"/api/devices/{linked['a2']}/").status_code == 204
    page = alice.api.get(history).json_body["messages"]
    assert all(a2_keys.enc_kid not in m["envelope"]["keys"] for m in page)


@db
def test_serving_costs_one_query_per_page(linked):
    alice, direct = linked["alice"], linked["direct"]
    post_wraps(
        alice,
        linked["a2"],
        wraps_for(linked["messages"], linked["a1_keys"], linked["a2_keys"]),
        linked["a1"],
    )
    counts = []
    for limit in (1, 4):
        with CaptureQueriesContext(connection) as queries:
            page = alice.api.get(f"/api/conversations/{direct['id']}/messages/?limit={limit}")
        assert len(page.json_body["messages"]) == limit
        wraps = [q for q in queries if "historykey" in q["sql"].lower()]
        counts.append((len(wraps), len(queries)))
    assert counts[0][0] == 1 and counts[0] == counts[1]  # one query, whatever the page size


@live_db
async def test_sync_serves_the_wraps_to_the_new_device(linked):
    alice, direct = linked["alice"], linked["direct"]
    wraps = await sync_to_async(wraps_for)(linked["messages"], linked["a1_keys"], linked["a2_keys"])
    response = await sync_to_async(post_wraps)(alice, linked["a2"], wraps, linked["a1"])
    assert response.json_body == {"stored": 4}
    ws = alice.socket(linked["a2"])
    assert (await ws.connect())[0]
    await ws.send_json_to({"type": "sync", "cursors": {str(direct["id"]): 0}})
    received = []
    while True:
        frame = await ws.receive_json_from(timeout=5)
        if frame["type"] == "synced":
            break
        if frame["type"] == "message":
            received.append(frame["message"])
    assert [m["seq"] for m in received] == [1, 2, 3, 4]
    for message, wrap in zip(received, wraps, strict=True):
        assert message["envelope"]["keys"][linked["a2_keys"].enc_kid] == wrap["ek"]
    assert opened(received[0], linked["a2_keys"], linked["bob"].keys) == "before you linked 0"
    await ws.disconnect()


@db
@pytest.mark.parametrize(
    "case, status, code",
    [
        ("too_many", 400, "bad_request"),
        ("none", 400, "bad_request"),
        ("message_twice", 400, "bad_request"),
        ("ek_not_base64", 400, "bad_request"),
        ("ek_for_another_key_size", 400, "bad_request"),
        ("message_not_an_int", 400, "bad_request"),
        ("unknown_message", 404, "not_found"),
        ("foreign_conversation", 403, "not_member"),
        ("one_bad_among_good", 403, "not_member"),
        ("former_member", 403, "not_member"),
        ("from_a_revoked_device", 403, "forbidden"),
        ("from_another_users_device", 403, "forbidden"),
        ("no_header_no_certified_device", 403, "forbidden"),
        ("to_another_users_device", 404, "not_found"),
        ("to_a_revoked_device", 404, "not_found"),
        ("to_an_unknown_device", 404, "not_found"),
    ],
)
def test_refusals_store_nothing(linked, device_keys, case, status, code):
    alice, bob = linked["alice"], linked["bob"]
    a1_keys, a2_keys, messages = linked["a1_keys"], linked["a2_keys"], linked["messages"]
    wraps = wraps_for(messages, a1_keys, a2_keys)
    target, acting, headers = linked["a2"], linked["a1"], None
    if case == "too_many":
        wraps = [{"message": i, "ek": wraps[0]["ek"]} for i in range(1, 502)]
    elif case == "none":
        wraps = []
    elif case == "message_twice":
        wraps.append(wraps[0])
    elif case == "ek_not_base64":
        wraps[1]["ek"] = wraps[1]["ek"][:-4] + "!!!="
    elif case == "ek_for_another_key_size":
        wraps[1]["ek"] = protocol.b64encode(bytes(384))  # a 3072-bit block for a 2048-bit key
    elif case == "message_not_an_int":
        wraps[1]["message"] = str(wraps[1]["message"])
    elif case == "unknown_message":
        wraps[1]["message"] = 999999
    elif case == "foreign_conversation":
        wraps = [{"message": linked["foreign"].pk, "ek": wraps[0]["ek"]}]
    elif case == "one_bad_among_good":
        wraps.append({"message": linked["foreign"].pk, "ek": wraps[0]["ek"]})
    elif case == "former_member":
        group = Conversation.objects.create(
            kind=Conversation.GROUP, title="g", owner_id=bob.user_id
        )
        Membership.objects.create(conversation=group, user_id=bob.user_id)
        Membership.objects.create(conversation=group, user_id=alice.user_id)
        old = store(bob, bob.keys, group.pk, "while alice was here", [a1_keys, bob.keys])
        Membership.objects.filter(conversation=group, user_id=alice.user_id).update(left_seq=1)
        wraps = wraps_for([old], a1_keys, a2_keys)
    elif case == "from_a_revoked_device":
        assert alice.api.delete(f"/api/devices/{acting}/").status_code == 204
    elif case == "from_another_users_device":
        acting = bob.device_id
    elif case == "no_header_no_certified_device":
        Device.objects.filter(user_id=alice.user_id).update(revoked=timezone.now())
        target = v1_device(alice, device_keys(), "uncertified")
        acting = None
        wraps = [{"message": m.pk, "ek": protocol.b64encode(bytes(256))} for m in messages]
    elif case == "to_another_users_device":
        target = bob.device_id
    elif case == "to_a_revoked_device":
        assert alice.api.delete(f"/api/devices/{target}/").status_code == 204
    elif case == "to_an_unknown_device":
        target = 999999
    response = post_wraps(alice, target, wraps, acting, headers)
    assert response.status_code == status, response.json_body
    assert error_code(response) == code, response.json_body
    assert not HistoryKey.objects.exists()


@db
def test_without_x_device_id_a_certified_device_of_hers_suffices(linked):
    alice = linked["alice"]
    wraps = wraps_for(linked["messages"][:1], linked["a1_keys"], linked["a2_keys"])
    assert post_wraps(alice, linked["a2"], wraps).json_body == {"stored": 1}
    anonymous = ApiClient().post(f"/api/devices/{linked['a2']}/history-keys/", {"wraps": wraps})
    assert anonymous.status_code == 401 and error_code(anonymous) == "not_authenticated"
