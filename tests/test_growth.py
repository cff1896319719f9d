"""Served pages pass the stored envelope through as the database's JSON text (issue 18
§3; docs/protocol.md "Speed and growth", growth): what a reader gets in a history page
and in `sync` must still be, value for value, each stored message as
`wire.message_dict` writes it from the Message the ORM decodes, with the history keys of
her active devices added to `keys` (§7.3) and nothing added for anyone else.

`test_served_pages_on_postgresql` (marked `processes`) reruns
`test_served_pages_are_the_stored_messages` in a pytest of its own on a fresh database of
the session's PostgreSQL server, whose jsonb text (`{"a": 1}`, keys reordered) is not
SQLite's; in the main run that test runs on SQLite.
"""

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from Crypto.PublicKey import RSA

from chatclient import protocol
from chatclient.protocol_errors import loads_strict
from messaging.models import Message
from messaging.wire import message_dict
from tests.inprocess import register
from tests.support.postgres_rerun import rerun_on_postgresql
from tests.test_history_keys import opened, post_wraps, store, wraps_for

INNER = "test_served_pages_are_the_stored_messages"


KEYS_ENV = "GROWTH_TEST_KEYS"  # the parent's device keys (PEM), so the rerun makes none


def _export(keys: protocol.DeviceKeys) -> list[str]:
    return [k.export_key().decode() for k in (keys.enc_private, keys.sig_private, keys.id_private)]


def _two_device_keys(device_keys) -> list[protocol.DeviceKeys]:
    """Alice's two devices' keys: the parent's when this runs as its PostgreSQL rerun
    (key generation is most of this test's time), else from the suite's shared pool."""
    exported = os.environ.get(KEYS_ENV)
    if not exported:
        return [device_keys(), device_keys()]
    return [
        protocol.DeviceKeys(*(RSA.import_key(pem) for pem in keys))
        for keys in json.loads(Path(exported).read_text())
    ]


@pytest.mark.processes
def test_served_pages_on_postgresql(postgres_server, device_keys, tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps([_export(device_keys()), _export(device_keys())]))
    rerun_on_postgresql(
        f"{__file__}::{INNER}", postgres_server.new_database("growth"), **{KEYS_ENV: str(keys)}
    )


def _stored(messages, username: str) -> list[dict]:
    """The messages as the ORM reads them back, in PROTOCOL §4's shape."""
    return [message_dict(Message.objects.get(pk=m.pk), username) for m in messages]


def _with_key(message: dict, enc_kid: str, ek: str) -> dict:
    envelope = message["envelope"]
    return {**message, "envelope": {**envelope, "keys": {**envelope["keys"], enc_kid: ek}}}


@pytest.mark.django_db(transaction=True)
async def test_served_pages_are_the_stored_messages(device_keys):
    # Key generation is the slow part: alice's two devices have the only keys; bob reads
    # history as a member, with no device.
    first_keys, second_keys = _two_device_keys(device_keys)
    alice, bob = await sync_to_async(register)("alice"), await sync_to_async(register)("bob")
    await sync_to_async(alice.register_device)(first_keys)
    a1_keys, a1 = alice.keys, alice.device_id

    def setting_up():
        direct = alice.api.post("/api/conversations/", {"members": ["bob"]}).json_body
        direct = direct["conversation"]
        messages = [store(alice, a1_keys, direct["id"], f"hello {i}", [a1_keys]) for i in range(4)]
        # One names two blobs, one was taken back (§10): no envelope, `deleted`.
        Message.objects.filter(pk=messages[1].pk).update(blob_ids=["b" * 22, "a" * 22])
        Message.objects.filter(pk=messages[2].pk).update(envelope=None, deleted=True)
        # `created` to the millisecond, truncated: at the edges of a second.
        moment = datetime(2026, 12, 1, 23, 59, 59, 999999, tzinfo=UTC)
        Message.objects.filter(pk=messages[3].pk).update(created=moment)
        Message.objects.filter(pk=messages[0].pk).update(created=moment.replace(microsecond=0))
        alice.register_device(second_keys, "new laptop")
        wraps = wraps_for(messages[:1], a1_keys, alice.keys)  # a history key for message 1
        assert post_wraps(alice, alice.device_id, wraps, acting=a1).json_body == {"stored": 1}
        stored = _stored(messages, "alice")
        # Alice's new device reads message 1 with its wrap; bob reads what was stored.
        for_alice = [_with_key(stored[0], alice.keys.enc_kid, wraps[0]["ek"]), *stored[1:]]
        path = f"/api/conversations/{direct['id']}/messages/"
        for reader, expected in ((alice, for_alice), (bob, stored)):
            response = reader.api.get(path)
            assert response.status_code == 200
            assert loads_strict(response.content) == {"messages": expected, "has_more": False}
        older = loads_strict(alice.api.get(path + "?before_seq=3&limit=1").content)
        assert older == {"messages": [for_alice[1]], "has_more": True}
        return direct, for_alice

    direct, for_alice = await sync_to_async(setting_up)()
    assert for_alice[2]["envelope"] is None and for_alice[1]["blobs"] == ["b" * 22, "a" * 22]
    edges = [for_alice[0]["created"], for_alice[3]["created"]]
    assert edges == ["2026-12-01T23:59:59.000Z", "2026-12-01T23:59:59.999Z"]

    ws = alice.socket()  # the new device
    assert (await ws.connect())[0]
    await ws.send_json_to({"type": "sync", "cursors": {str(direct["id"]): 0}})
    frames = []  # presence frames, if any, are not this test's business
    while not frames or frames[-1]["type"] != "synced":
        frame = loads_strict(await ws.receive_from(timeout=5))
        if frame["type"] in ("message", "synced"):
            frames.append(frame)
    await ws.disconnect()
    assert frames == [
        *({"type": "message", "message": message} for message in for_alice),
        {
            "type": "synced",
            "cursors": {str(direct["id"]): 4},
            "has_more": {str(direct["id"]): False},
        },
    ]
    # The served envelope still opens and verifies on the new device.
    assert opened(frames[0]["message"], alice.keys, a1_keys) == "hello 0"
