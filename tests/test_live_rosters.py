"""Rosters across real processes (PROTOCOL §8): two devices of a group's owner, on two
daphne workers, post records for the same head at the same moment (SQLite shared by the
workers, and PostgreSQL): one applies, the other gets `stale_roster` with the new head,
signs again and applies; both changes end in the chain, and a member's socket on either
worker hears of each."""

import asyncio

import pytest

from chatclient import protocol, roster
from chatclient.errors import ChatApiError
from scripts.people.live import live_user, next_of, second_device

pytestmark = [pytest.mark.processes, pytest.mark.timeout(300)]


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_two_owner_devices_adding_at_once(live_stack, device_keys, db):
    stack = live_stack(2, db=db)
    left, right = stack.base_urls
    laptop = await live_user(left, "alice", device_keys())
    phone = await second_device(right, laptop, device_keys())
    bob = await live_user(right, "bob", device_keys())
    dave = await live_user(left, "dave", device_keys())
    erin = await live_user(right, "erin", device_keys())
    group = await laptop.create_group([bob], "at once")
    bob_ws = await bob.socket()

    records = [laptop.record(group, "add", [dave]), phone.record(group, "add", [erin])]
    outcomes = await asyncio.gather(
        laptop.post_record(group, records[0]),
        phone.post_record(group, records[1]),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, ChatApiError)]
    applied = [o for o in outcomes if isinstance(o, dict)]
    assert len(refused) == 1 and len(applied) == 1, outcomes
    assert (refused[0].status, refused[0].code) == (409, "stale_roster")
    head = refused[0].extra["head"]
    assert head == applied[0]["roster_head"] and head["n"] == 1
    loser = laptop if outcomes[0] is refused[0] else phone
    subject = dave if loser is laptop else erin
    final = await loser.post_record(
        group, loser.record({**group, "roster_head": head}, "add", [subject])
    )
    assert final["roster_head"]["n"] == 2
    assert {m["username"] for m in final["members"]} == {"alice", "bob", "dave", "erin"}

    served = (await bob.session.request("GET", f"/api/conversations/{group['id']}/roster/"))[
        "records"
    ]
    keys = {k.sig_kid: k.sig_public for k in (laptop.keys, phone.keys)}
    state = roster.verify_chain(group["gid"], served, lambda r: keys.get(r["sig_kid"]))
    assert state.members == {laptop.user_id, bob.user_id, dave.user_id, erin.user_id}
    assert sorted(r["sig_kid"] for r in served[1:]) == sorted(keys)
    heads = []
    while len(heads) < 2:  # bob, on one worker, hears of both changes
        frame = await next_of(bob_ws, "conversation")
        heads.append(frame["conversation"]["roster_head"]["n"])
    assert sorted(heads) == [1, 2]
    await bob_ws.close()


async def test_a_removed_member_hears_it_on_another_worker(live_stack, device_keys):
    stack = live_stack(2)
    left, right = stack.base_urls
    alice = await live_user(left, "alice", device_keys())
    bob = await live_user(left, "bob", device_keys())
    carol = await live_user(right, "carol", device_keys())
    group = await alice.create_group([bob, carol], "crew")
    carol_ws = await carol.socket()
    removed = await alice.post_record(group, alice.record(group, "remove", [carol]))
    frame = await next_of(carol_ws, "conversation")
    assert frame["conversation"]["id"] == group["id"]
    assert frame["conversation"]["roster_head"] == removed["roster_head"]
    assert [m["username"] for m in frame["conversation"]["members"]] == ["alice", "bob"]
    # she can no longer send there: her envelope is refused, whatever head it names
    msg_id, envelope = await carol.seal(
        removed, "still here?", {bob.keys.enc_kid: bob.keys.enc_public}
    )
    with pytest.raises(ChatApiError) as refused:
        await carol.session.send_message(group["id"], msg_id, envelope)
    assert refused.value.code == "not_member"
    assert protocol.is_head(envelope["head"])
    await carol_ws.close()
