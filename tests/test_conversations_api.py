"""Conversations, groups, members and history over HTTP (PROTOCOL §4, §6, §8); the roster's
every refusal is in test_rosters.py."""

import pytest

from messaging.models import Conversation, Membership, Message
from tests.inprocess import (
    ApiClient,
    change_roster,
    create_group,
    current_view,
    open_message,
    seal,
)

pytestmark = pytest.mark.django_db


def error_code(response):
    return response.json_body["error"]["code"]


def send(user, conversation, text):
    msg_id, envelope = seal(user, conversation, text)
    response = user.api.post(
        f"/api/conversations/{conversation['id']}/messages/",
        {"client_msg_id": msg_id, "envelope": envelope},
    )
    assert response.status_code == 201, response.json_body
    return response.json_body["message"]


def test_direct_conversation_is_unique_per_pair(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    created = alice.api.post("/api/conversations/", {"members": ["bob"]})
    assert created.status_code == 201
    conversation = created.json_body["conversation"]
    assert conversation["kind"] == "direct" and conversation["owner"] is None
    assert conversation["gid"] is None and conversation["roster_head"] is None
    assert {m["username"] for m in conversation["members"]} == {"alice", "bob"}
    again = bob.api.post("/api/conversations/", {"members": ["alice", "bob"]})
    assert again.status_code == 200 and again.json_body["conversation"]["id"] == conversation["id"]
    assert Conversation.objects.count() == 1


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"members": []}, 400, "bad_request"),
        ({"members": ["alice"]}, 400, "bad_request"),
        ({"members": ["nobody"]}, 404, "not_found"),
        ({"members": "bob"}, 400, "bad_request"),
        ({"members": [7]}, 400, "bad_request"),
        ({"members": ["bob", "carol"]}, 400, "bad_request"),  # a group needs its roster
        ({"members": ["bob"], "kind": "group"}, 400, "bad_request"),  # v1's group body
        ({"members": ["bob"], "title": "pair"}, 400, "bad_request"),
        ({"title": "Team"}, 400, "bad_request"),
        ({}, 400, "bad_request"),
    ],
)
def test_create_conversation_refusals(make_user, body, status, code):
    alice = make_user("alice")
    make_user("bob"), make_user("carol")
    response = alice.api.post("/api/conversations/", body)
    assert response.status_code == status and error_code(response) == code
    assert not Conversation.objects.exists()


def test_groups_carry_gid_and_roster_head(make_user):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    pair = create_group(alice, [bob], "pair")
    assert pair["kind"] == "group" and pair["title"] == "pair"
    assert pair["roster_head"]["n"] == 0 and len(pair["roster_head"]["hash"]) == 64
    group = create_group(alice, [carol, bob], "Team")
    assert group["owner"]["username"] == "alice" and group["title"] == "Team"
    assert [m["username"] for m in group["members"]] == ["alice", "bob", "carol"]
    assert group["gid"] != pair["gid"]
    listed = {c["id"]: c for c in bob.api.get("/api/conversations/").json_body["conversations"]}
    assert listed[group["id"]]["gid"] == group["gid"]
    assert listed[group["id"]]["roster_head"] == group["roster_head"]


def test_members_add_remove_leave_and_owner_handover(make_user):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    group = create_group(alice, [bob])
    added = change_roster(alice, group, "add", [carol])
    assert {m["username"] for m in added["members"]} == {"alice", "bob", "carol"}
    assert added["roster_head"]["n"] == 1
    removed = change_roster(alice, group, "remove", [carol])
    assert {m["username"] for m in removed["members"]} == {"alice", "bob"}
    # carol keeps what she could read, and sees the group without herself
    assert carol.api.get(f"/api/conversations/{group['id']}/messages/").status_code == 200
    assert [m["username"] for m in current_view(carol, group["id"])["members"]] == [
        "alice",
        "bob",
    ]
    left = change_roster(alice, group, "leave", [alice])  # the owner leaves: bob inherits
    assert left["owner"]["username"] == "bob" and [m["username"] for m in left["members"]] == [
        "bob"
    ]
    view = current_view(bob, group["id"])
    assert view["owner"]["username"] == "bob" and view["roster_head"]["n"] == 3


def test_member_endpoints_are_gone(trio):
    alice, _, _, direct = trio
    group = create_group(alice, [trio[1]])
    for conversation in (direct, group):
        cid = conversation["id"]
        added = alice.api.post(f"/api/conversations/{cid}/members/", {"username": "carol"})
        assert added.status_code == 404 and error_code(added) == "not_found"
        assert alice.api.delete(f"/api/conversations/{cid}/members/bob/").status_code == 404
    assert Membership.objects.filter(user_id=trio[2].user_id).count() == 0


def test_history_pages_and_access(trio):
    alice, bob, carol, direct = trio
    for i in range(120):
        Message.objects.create(
            conversation_id=direct["id"],
            seq=i + 1,
            sender_id=alice.user_id,
            sender_device_id=alice.device_id,
            client_msg_id=f"00000000-0000-4000-8000-{i:012d}",
            envelope={"v": 1},
            size=1,
        )
    Conversation.objects.filter(pk=direct["id"]).update(last_seq=120)
    base = f"/api/conversations/{direct['id']}/messages/"
    newest = bob.api.get(base).json_body
    assert [m["seq"] for m in newest["messages"]] == list(range(71, 121)) and newest["has_more"]
    older = bob.api.get(base + "?before_seq=71&limit=500").json_body
    assert [m["seq"] for m in older["messages"]] == list(range(1, 71)) and not older["has_more"]
    assert len(bob.api.get(base + "?limit=1000").json_body["messages"]) == 100
    assert bob.api.get(base + "?limit=abc").status_code == 400
    assert bob.api.get(base + "?before_seq=-1").status_code == 400
    assert carol.api.get(base).status_code == 403
    assert error_code(carol.api.get(base)) == "not_member"
    assert bob.api.get("/api/conversations/99999/messages/").status_code == 404
    assert bob.api.get("/api/conversations/99999999999999999999/messages/").status_code in (
        400,
        404,
    )
    assert ApiClient().get(base).status_code == 401


def test_rest_send_replay_and_unread(trio):
    alice, bob, _, direct = trio
    message = send(alice, direct, "hello over REST")
    assert (
        message["seq"] == 1
        and message["sender"] == "alice"
        and message["sender_device"] == alice.device_id
    )
    assert open_message(bob, message, alice.keys) == {"type": "text", "text": "hello over REST"}
    replay = alice.api.post(
        f"/api/conversations/{direct['id']}/messages/",
        {
            "client_msg_id": message["client_msg_id"],
            "envelope": seal(alice, direct, "different")[1],
        },
    )
    assert replay.status_code == 200 and replay.json_body["message"] == message
    assert Message.objects.count() == 1
    send(alice, direct, "second")
    listing = {c["id"]: c for c in bob.api.get("/api/conversations/").json_body["conversations"]}
    assert listing[direct["id"]]["unread"] == 2 and listing[direct["id"]]["last_seq"] == 2
    assert alice.api.get("/api/conversations/").json_body["conversations"][0]["unread"] == 0
    Membership.objects.filter(user_id=bob.user_id).update(read_up_to=1)
    assert bob.api.get("/api/conversations/").json_body["conversations"][0]["unread"] == 1
