"""Issue 15 finding 7, replayed as an attacker would: a stranger opens a direct conversation
with bob and watches for him to come online, go offline, type or read; a blocked stranger
then tries every way back in (REST send, WebSocket send, a new direct conversation, a
group with bob). Each observation and refusal is one case of the figures table; the unit
tests (tests/test_requests.py) hold the details."""

import pytest
from asgiref.sync import sync_to_async

from messaging.models import Conversation, Membership, Message
from tests.adversarial.figures import Figures
from tests.inprocess import create_group_response, frames_until_pong, seal

pytestmark = pytest.mark.django_db(transaction=True)

WATCHED = {"presence", "typing", "read"}


async def test_a_stranger_cannot_watch_or_reach_bob(make_user):
    figures = Figures("hardening: a stranger watches presence (requests, blocks)")
    bob, mallory = [await sync_to_async(make_user)(n) for n in ("bob", "mallory")]
    opened = await sync_to_async(mallory.api.post)("/api/conversations/", {"members": ["bob"]})
    direct = opened.json_body["conversation"]
    watcher = mallory.socket()
    assert (await watcher.connect())[0]
    await frames_until_pong(watcher)

    # bob comes and goes, types and reads, twice; the stranger sees none of it
    for round_ in range(2):
        bob_ws = bob.socket()
        assert (await bob_ws.connect())[0]
        await bob_ws.send_json_to({"type": "typing", "conversation": direct["id"]})
        await bob_ws.send_json_to({"type": "read", "conversation": direct["id"], "up_to": 0})
        await frames_until_pong(bob_ws)
        seen = [f for f in await frames_until_pong(watcher) if f["type"] in WATCHED]
        figures.check(not seen, f"round {round_}: bob online, the stranger saw {seen}")
        await bob_ws.disconnect()
        seen = [f for f in await frames_until_pong(watcher) if f["type"] in WATCHED]
        figures.check(not seen, f"round {round_}: bob offline, the stranger saw {seen}")
    listed = await sync_to_async(mallory.api.get)("/api/conversations/")
    marks = listed.json_body["conversations"][0]["read_marks"]
    figures.check(marks[str(bob.user_id)] == 0, f"bob's read mark shows: {marks}")

    # bob blocks him: every way back in is refused and nothing is stored
    await sync_to_async(bob.api.post)("/api/users/mallory/block/")
    msg_id, envelope = await sync_to_async(seal)(mallory, direct, "let me in")
    path = f"/api/conversations/{direct['id']}/messages/"
    body = {"client_msg_id": msg_id, "envelope": envelope}
    rest = await sync_to_async(mallory.api.post)(path, body)
    figures.check(rest.status_code == 403, f"REST send: {rest.status_code}")
    await watcher.send_json_to({"type": "send", "conversation": direct["id"], **body})
    replies = await frames_until_pong(watcher)
    codes = [(f.get("code"), f.get("client_msg_id")) for f in replies if f["type"] == "error"]
    figures.check(codes == [("forbidden", msg_id)], f"WebSocket send: {replies}")
    again = await sync_to_async(mallory.api.post)("/api/conversations/", {"members": ["bob"]})
    figures.check(again.status_code == 403, f"new direct conversation: {again.status_code}")
    group = await sync_to_async(create_group_response)(mallory, [bob])
    figures.check(group.status_code == 403, f"group with bob: {group.status_code}")
    stored = (
        await Message.objects.acount(),
        await Conversation.objects.acount(),
        await Membership.objects.filter(user_id=bob.user_id).acount(),
    )
    figures.check(stored == (0, 1, 1), f"rows stored: {stored}")
    await watcher.disconnect()
    figures.stored = stored[0]
    figures.assert_clean()
