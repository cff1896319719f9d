"""Message requests and blocks (PROTOCOL §6; issue 15 finding 7): who is a request for
whom, a stranger watching presence, typing and read receipts, accept, decline, and blocks
refused on REST, the WebSocket and group rosters with nothing stored."""

import pytest
from asgiref.sync import sync_to_async

from messaging.models import Block, Conversation, Membership, Message
from tests.inprocess import (
    create_group,
    create_group_response,
    frames_until_pong,
    post_record,
    roster_record,
    seal,
)
from tests.test_consumer import connected, next_of, send_over

pytestmark = pytest.mark.django_db(transaction=True)


def direct_of(starter, other) -> dict:
    response = starter.api.post("/api/conversations/", {"members": [other.username]})
    assert response.status_code in (200, 201), response.content
    return response.json_body["conversation"]


def listed(user) -> dict[int, dict]:
    return {c["id"]: c for c in user.api.get("/api/conversations/").json_body["conversations"]}


def rest_send(user, conversation, text="hi"):
    msg_id, envelope = seal(user, conversation, text)
    path = f"/api/conversations/{conversation['id']}/messages/"
    return user.api.post(path, {"client_msg_id": msg_id, "envelope": envelope})


def test_a_stranger_starts_a_request_until_she_accepts_or_replies(make_user):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    direct = direct_of(carol, bob)
    assert direct["request"] is False  # the starter's view
    assert listed(bob)[direct["id"]]["request"] is True
    assert rest_send(carol, direct, "hello bob").status_code == 201
    assert listed(bob)[direct["id"]]["request"] is True  # his messages do not accept it
    accepted = bob.api.post(f"/api/conversations/{direct['id']}/accept/")
    assert accepted.status_code == 200, accepted.content
    assert accepted.json_body["conversation"]["request"] is False
    assert listed(bob)[direct["id"]]["request"] is False

    # Replying accepts too.
    second = direct_of(alice, bob)
    assert listed(bob)[second["id"]]["request"] is True
    assert rest_send(bob, second, "hi alice").status_code == 201
    assert listed(bob)[second["id"]]["request"] is False

    # She wrote to him before (in a conversation he is in): his new one is no request.
    group = create_group(alice, [carol])
    assert rest_send(carol, group, "hello group").status_code == 201
    fourth = direct_of(alice, carol)
    assert listed(carol)[fourth["id"]]["request"] is False
    assert listed(alice)[group["id"]]["request"] is False  # groups never are

    # Nobody else may accept it, and a bad id is a clear error.
    assert alice.api.post(f"/api/conversations/{direct['id']}/accept/").status_code == 403
    assert bob.api.post("/api/conversations/999999/accept/").status_code == 404


async def test_a_stranger_watches_presence_typing_and_read_receipts(make_user):
    """The attack: carol opens a direct conversation with bob and watches him come and go.
    Until bob accepts she gets no presence, typing or read frame from him (nor he hers);
    his read marks still reach his own devices and are stored."""
    bob, carol = await sync_to_async(make_user)("bob"), await sync_to_async(make_user)("carol")
    direct = await sync_to_async(direct_of)(carol, bob)
    (c_ws,) = await connected(carol.socket())
    await send_over(c_ws, carol, direct, "hello, it's carol")
    await next_of(c_ws, "message")  # her own copy
    b_ws, b2_ws = await connected(bob.socket(), bob.socket())
    await b_ws.send_json_to({"type": "typing", "conversation": direct["id"]})
    await b_ws.send_json_to({"type": "read", "conversation": direct["id"], "up_to": 1})
    await frames_until_pong(b_ws)  # his typing and read were handled
    own = await frames_until_pong(b2_ws)
    assert [f for f in own if f["type"] == "read"] == [
        {
            "type": "read",
            "conversation": direct["id"],
            "user": "bob",
            "user_id": bob.user_id,
            "up_to": 1,
        }
    ]  # his own other device
    assert [f for f in own if f["type"] == "presence"] == []  # nor her presence for him
    await b2_ws.disconnect()
    await b_ws.disconnect()  # bob went offline
    assert await frames_until_pong(c_ws) == []  # no presence, typing or read for carol
    membership = await Membership.objects.aget(conversation_id=direct["id"], user_id=bob.user_id)
    assert membership.read_up_to == 1
    view = (await sync_to_async(listed)(carol))[direct["id"]]
    assert view["read_marks"][str(bob.user_id)] == 0  # nor through her conversation object

    # bob accepts: presence flows both ways, and his devices learn it is accepted.
    (b_ws,) = await connected(bob.socket())
    assert await frames_until_pong(c_ws) == []
    accept = f"/api/conversations/{direct['id']}/accept/"
    assert (await sync_to_async(bob.api.post)(accept)).status_code == 200
    conversation = await next_of(b_ws, "conversation")
    assert conversation["conversation"]["request"] is False
    assert await next_of(c_ws, "presence") == {
        "type": "presence",
        "user": "bob",
        "user_id": bob.user_id,
        "online": True,
    }
    assert (await next_of(b_ws, "presence"))["user"] == "carol"
    await b_ws.send_json_to({"type": "typing", "conversation": direct["id"]})
    assert (await next_of(c_ws, "typing"))["user"] == "bob"
    await b_ws.disconnect()
    assert (await next_of(c_ws, "presence"))["online"] is False
    await c_ws.disconnect()


async def test_a_blocked_user_is_refused_on_every_path_and_nothing_is_stored(make_user):
    alice, bob, carol = [await sync_to_async(make_user)(n) for n in ("alice", "bob", "carol")]
    direct = await sync_to_async(direct_of)(carol, bob)
    blocked = await sync_to_async(bob.api.post)("/api/users/carol/block/")
    assert blocked.status_code == 204 and blocked.content == b""
    assert (await sync_to_async(bob.api.post)("/api/users/carol/block/")).status_code == 204
    assert await Block.objects.filter(blocker_id=bob.user_id).acount() == 1

    # REST send and starting the conversation again
    refused = await sync_to_async(rest_send)(carol, direct)
    assert refused.status_code == 403 and refused.json_body["error"]["code"] == "forbidden"
    again = await sync_to_async(carol.api.post)("/api/conversations/", {"members": ["bob"]})
    assert again.status_code == 403 and again.json_body["error"]["code"] == "forbidden"

    # WebSocket send: an error frame naming the send; the socket stays open
    (c_ws,) = await connected(carol.socket())
    msg_id, envelope = await sync_to_async(seal)(carol, direct, "let me in")
    frame = {"type": "send", "conversation": direct["id"], "client_msg_id": msg_id}
    await c_ws.send_json_to({**frame, "envelope": envelope})
    error = await next_of(c_ws, "error")
    assert (error["code"], error["client_msg_id"]) == ("forbidden", msg_id)
    assert await frames_until_pong(c_ws) == []  # still open and answering

    # adding him to a group: at creation and by a roster record
    response = await sync_to_async(create_group_response)(carol, [bob])
    assert response.status_code == 403 and response.json_body["error"]["code"] == "forbidden"
    group = await sync_to_async(create_group)(carol, [alice])
    record = await sync_to_async(roster_record)(carol, group, "add", [bob])
    response = await sync_to_async(post_record)(carol, group, record)
    assert response.status_code == 403, response.content
    assert await Message.objects.acount() == 0
    assert await Conversation.objects.acount() == 2  # the direct one and carol's group
    assert await Membership.objects.filter(user_id=bob.user_id).acount() == 1
    assert (await Conversation.objects.aget(pk=direct["id"])).last_seq == 0

    # bob sees the block on their conversation; he may lift it, then she may write
    assert (await sync_to_async(listed)(bob))[direct["id"]]["blocked"] is True
    assert (await sync_to_async(bob.api.delete)("/api/users/carol/block/")).status_code == 204
    assert (await sync_to_async(rest_send)(carol, direct)).status_code == 201
    assert (await sync_to_async(bob.api.post)("/api/users/nobody/block/")).status_code == 404
    assert (await sync_to_async(bob.api.post)("/api/users/bob/block/")).status_code == 400
    await c_ws.disconnect()


async def test_a_block_silences_a_shared_group_both_ways(make_user):
    """A block leaves a shared group alone (messages flow) but no presence, typing or read
    frames cross between the two, either way."""
    alice, bob = [await sync_to_async(make_user)(n) for n in ("alice", "bob")]
    group = await sync_to_async(create_group)(alice, [bob])
    a_ws, b_ws = await connected(alice.socket(), bob.socket())
    assert (await next_of(a_ws, "presence"))["online"] is True
    await sync_to_async(bob.api.post)("/api/users/alice/block/")
    assert (await next_of(a_ws, "presence"))["online"] is False  # he is gone for her
    for ws in (a_ws, b_ws):
        await ws.send_json_to({"type": "typing", "conversation": group["id"]})
    await send_over(a_ws, alice, group, "still a group")
    assert (await next_of(b_ws, "message"))["message"]["sender"] == "alice"
    await b_ws.send_json_to({"type": "read", "conversation": group["id"], "up_to": 1})
    await frames_until_pong(b_ws)
    quiet = {"presence", "typing", "read"}
    assert [f for f in await frames_until_pong(a_ws) if f["type"] in quiet] == []
    await b_ws.disconnect()
    assert [f for f in await frames_until_pong(a_ws) if f["type"] in quiet] == []
    await a_ws.disconnect()


def test_declining_hides_the_request_until_the_starter_writes_again(make_user):
    bob, carol = make_user("bob"), make_user("carol")
    direct = direct_of(carol, bob)
    assert rest_send(carol, direct, "one").status_code == 201
    assert listed(bob)[direct["id"]]["unread"] == 1
    assert bob.api.post(f"/api/conversations/{direct['id']}/decline/").status_code == 204
    assert direct["id"] not in listed(bob)
    refused = carol.api.post(f"/api/conversations/{direct['id']}/decline/")
    assert refused.json_body["error"]["code"] == "bad_request"  # not a request of hers
    assert rest_send(carol, direct, "two").status_code == 201
    again = listed(bob)[direct["id"]]
    assert (again["request"], again["unread"]) == (True, 1)


def test_the_admin_shows_blocks_read_only(make_user):
    from tests.test_admin import staff_client

    bob, _ = make_user("bob"), make_user("carol")
    assert bob.api.post("/api/users/carol/block/").status_code == 204
    staff = staff_client()
    listing = staff.get("/admin/messaging/block/")
    assert listing.status_code == 200 and b"carol" in listing.content
    assert staff.get("/admin/messaging/block/add/").status_code == 403


async def test_replying_over_the_websocket_accepts(make_user):
    """Her send on the socket accepts the request: a `conversation` frame for her devices
    (request false) and presence both ways, told after the send's commit."""
    bob, carol = [await sync_to_async(make_user)(n) for n in ("bob", "carol")]
    direct = await sync_to_async(direct_of)(carol, bob)
    c_ws, b_ws = await connected(carol.socket(), bob.socket())
    msg_id, envelope = await sync_to_async(seal)(bob, direct, "hi carol")
    frame = {"type": "send", "conversation": direct["id"], "client_msg_id": msg_id}
    await b_ws.send_json_to({**frame, "envelope": envelope})
    got = await frames_until_pong(b_ws)  # the send was handled, its frames told
    # What comes through the channel layer (the copy, presence) may come after the pong.
    while not {"conversation", "presence", "ack", "message"} <= {f["type"] for f in got}:
        got.append(await b_ws.receive_json_from(timeout=5))
    views = [f["conversation"] for f in got if f["type"] == "conversation"]
    assert [v["request"] for v in views] == [False]
    assert [f["user"] for f in got if f["type"] == "presence"] == ["carol"]
    assert [f["type"] for f in got if f["type"] in ("ack", "message")] == ["ack", "message"]
    assert (await next_of(c_ws, "presence"))["user"] == "bob"
    assert (await next_of(c_ws, "message"))["message"]["sender"] == "bob"
    await c_ws.disconnect()
    await b_ws.disconnect()
