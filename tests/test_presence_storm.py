"""Presence under a connect storm (PROTOCOL §6, issue 18): sockets registered together in
one batch (`presence.register_many`, `unregister_many`) come out as if one after the
other, and every socket of a storm is told each online peer exactly once."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from messaging import presence
from messaging.models import Connection
from tests.inprocess import create_group, frames_until_pong

pytestmark = pytest.mark.django_db(transaction=True)


def _direct(starter, other, *, accept=True) -> None:
    body = {"members": [other.username]}
    direct = starter.api.post("/api/conversations/", body).json_body["conversation"]
    if accept:
        other.api.post(f"/api/conversations/{direct['id']}/accept/")


def test_a_batch_registers_as_if_one_after_the_other(make_user):
    a, b, c = make_user("ann"), make_user("ben"), make_user("cat")
    _direct(a, b)
    _direct(a, c)
    _direct(b, c, accept=False)  # a message request for cat: ben and cat are not in touch
    Connection.objects.create(  # cat is online through another process
        channel_name="elsewhere", user_id=c.user_id, device_id=c.device_id, worker="w" * 32
    )
    sockets = [(f"s{i}", user.user_id, user.device_id) for i, user in enumerate([a, b, a, c, a])]
    opened = presence.register_many(sockets, max_per_user=2, max_per_device=5)
    online = [
        None if o is None else (o.came_online, sorted(p.username for p in o.online)) for o in opened
    ]
    assert online == [
        (True, ["cat"]),  # ann: cat was there before her
        (True, ["ann"]),  # ben: ann came before him, cat is no peer of his
        (False, ["ben", "cat"]),  # ann's second socket: ben is online by now
        (False, ["ann"]),  # cat was online already
        None,  # ann's third socket is over max_per_user, counted with those before it
    ]
    assert set(Connection.objects.values_list("channel_name", flat=True)) == {
        "elsewhere", "s0", "s1", "s2", "s3",
    }  # fmt: skip
    told = presence.unregister_many([("s0", a.user_id), ("s1", b.user_id), ("s2", a.user_id)])
    # ann goes offline with her last socket here and cat is told; ben's only peer is gone
    assert told == [None, [], [c.user_id]]


async def test_a_storm_of_connects_tells_each_socket_each_online_peer_once(make_user):
    make = sync_to_async(make_user)
    names = ["alice", "bob", "carol", "dave", "oscar", "zed"]
    alice, bob, carol, dave, oscar, zed = [await make(name) for name in names]
    await sync_to_async(create_group)(alice, [bob, carol, dave, zed])
    await sync_to_async(dave.api.post)("/api/users/carol/block/")
    await sync_to_async(_direct)(zed, oscar)
    storm = [alice, alice, bob, carol, dave, oscar]
    sockets = [user.socket() for user in storm]
    assert all(ok for ok, _ in await asyncio.gather(*(ws.connect() for ws in sockets)))
    frames = [await frames_until_pong(ws) for ws in sockets]  # every connect is done
    z_ws = zed.socket()  # in touch with all of them: its arrival closes what each was told
    assert (await z_ws.connect())[0]
    for ws, got in zip(sockets, frames, strict=True):
        while (frame := await ws.receive_json_from(timeout=5)).get("user") != "zed":
            got.append(frame)
    told = [sorted((f["type"], f["user"], f["online"]) for f in got) for got in frames]

    def online(*users):
        return sorted(("presence", user, True) for user in users)

    assert told == [
        online("bob", "carol", "dave"),
        online("bob", "carol", "dave"),
        online("alice", "carol", "dave"),
        online("alice", "bob"),  # dave blocked carol: neither is told of the other
        online("alice", "bob"),
        [],  # oscar shares only a conversation with zed
    ]
    for ws in [*sockets, z_ws]:
        await ws.disconnect()


async def test_an_announcement_that_repeats_what_a_socket_was_told_is_left_out(trio):
    """A socket joins its groups before its snapshot is taken: a peer coming online in
    between is named by both. The repeat is left out; a change is not."""
    alice, bob, _, _ = trio
    b_ws, a_ws = bob.socket(), alice.socket()
    assert (await b_ws.connect())[0] and (await a_ws.connect())[0]
    assert [f["user"] for f in await frames_until_pong(a_ws)] == ["bob"]  # her snapshot
    bob_user = await User.objects.aget(pk=bob.user_id)
    await presence.announce([alice.user_id], bob_user, True)  # what her snapshot said
    await presence.announce([alice.user_id], bob_user, False)
    assert await a_ws.receive_json_from(timeout=5) == {
        "type": "presence", "user": "bob", "user_id": bob.user_id, "online": False,
    }  # fmt: skip
    await a_ws.disconnect()
    await b_ws.disconnect()
