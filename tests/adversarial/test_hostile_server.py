"""A malicious server or member against the Python client (chatclient.ChatClient): the
client is under test, so a crafted hostile server is fair. A tiny fake session answers
the device directory's lookups with whatever the attacker wants; messages are crafted.

Each attack must end refused ("unverified"/"replay", or the key left out) or warned about
(a DeviceSetChange notice), never as a verified text from the claimed sender.
"""

from datetime import UTC, datetime, timedelta

import pytest

from accounts.wire import iso_utc
from chatclient import protocol
from chatclient.client import ChatClient
from chatclient.errors import ChatApiError
from chatclient.events import OK
from tests.adversarial.figures import Figures

ALICE, BOB, CAROL = (1, "alice"), (2, "bob"), (3, "carol")
CONVERSATION = 40
EARLIER = datetime.now(UTC) - timedelta(days=1)


def record(device_id, user_id, keys, *, proof_keys=None, revoked=None):
    """A device record of §4; `proof_keys` signs the proof (the attacker's own keys)."""
    return {
        "id": device_id,
        "name": f"device {device_id}",
        "enc_spki": protocol.b64encode(keys.enc_spki),
        "sig_spki": protocol.b64encode(keys.sig_spki),
        "enc_kid": keys.enc_kid,
        "sig_kid": keys.sig_kid,
        "proof": protocol.sign_device_proof(proof_keys or keys, user_id),
        "created": iso_utc(EARLIER),
        "revoked": revoked,
    }


class HostileSession:
    """Answers `user_devices` and `lookup_key` from `devices` (username -> records), which
    a test changes at will; counts calls."""

    def __init__(self, users):
        self.users = dict(users)  # username -> id
        self.devices: dict[str, list[dict]] = {name: [] for name in users}
        self.calls = 0

    async def user_devices(self, username, *, include_revoked=False):
        self.calls += 1
        if username not in self.users:
            raise ChatApiError(404, "not_found", "no such user")
        devices = [d for d in self.devices[username] if include_revoked or d["revoked"] is None]
        return {"user": {"id": self.users[username], "username": username}, "devices": devices}

    async def lookup_key(self, kid):
        self.calls += 1
        for username, devices in self.devices.items():
            for device in devices:
                if kid in (device["enc_kid"], device["sig_kid"]):
                    return {
                        "device": device,
                        "user": {"id": self.users[username], "username": username},
                    }
        raise ChatApiError(404, "not_found", "no device holds this key")


def message(
    sender,
    device_id,
    sender_keys,
    recipients,
    text,
    *,
    msg_id=None,
    message_id=100,
    seq=1,
    conversation=CONVERSATION,
    signer_keys=None,
):
    """A stored message of §4 as a server would deliver it."""
    msg_id = msg_id or protocol.new_client_msg_id()
    envelope = protocol.seal_envelope(
        protocol.text_message(text),
        conversation_id=conversation,
        sender_id=sender[0],
        client_msg_id=msg_id,
        sender_keys=signer_keys or sender_keys,
        recipient_keys={k.enc_kid: k.enc_public for k in recipients},
    )
    return {
        "id": message_id,
        "conversation": conversation,
        "seq": seq,
        "sender_id": sender[0],
        "sender": sender[1],
        "sender_device": device_id,
        "client_msg_id": msg_id,
        "created": iso_utc(datetime.now(UTC)),
        "envelope": envelope,
    }


@pytest.fixture
def cast(device_keys):
    alice_keys, bob_keys, carol_keys, mallory_keys, other_keys = (device_keys() for _ in range(5))
    session = HostileSession({"alice": 1, "bob": 2, "carol": 3})
    session.devices = {
        "alice": [record(11, 1, alice_keys)],
        "bob": [record(21, 2, bob_keys)],
        "carol": [record(31, 3, carol_keys)],
    }
    client = ChatClient(session, alice_keys, user_id=1, username="alice", device_id=11)
    return client, session, alice_keys, bob_keys, carol_keys, mallory_keys, other_keys


async def learn(client, *names):
    for name in names:
        await client.directory.devices_of(name)
    client.pop_notices()


def trusted(event, text):
    return event.status == OK and event.text == text


async def test_hostile_server_against_python_client(cast):
    figures = Figures("hostile server/member vs Python client")
    client, session, alice_keys, bob_keys, carol_keys, mallory_keys, other_keys = cast
    await learn(client, "alice", "bob", "carol")
    # A genuine message opens: the fake server itself is sound.
    genuine = message(BOB, 21, bob_keys, [alice_keys, bob_keys], "genuine")
    event = await client.open(genuine)
    figures.check(trusted(event, "genuine"), f"genuine message: {event}")

    # 1. Substituted public key for a known device: bob's device 21 now carries mallory's
    #    keys (with a valid proof by those keys for bob's user id).
    session.devices["bob"] = [record(21, 2, mallory_keys)]
    forged = message(
        BOB, 21, mallory_keys, [alice_keys, mallory_keys], "substituted", message_id=101, seq=2
    )
    event = await client.open(forged)
    notices = client.pop_notices()
    figures.check(
        not trusted(event, "substituted") or any(n.username == "bob" for n in notices),
        f"substituted key for bob's device 21 shown as trusted, no warning: {event}",
    )
    figures.check(
        event.status != OK, f"a known device's changed key is not refused: {event.status}"
    )
    # ... nor used to encrypt to bob.
    recipients = await client._recipient_keys({"members": [{"username": "bob"}]}, refresh=True)
    figures.check(
        mallory_keys.enc_kid not in recipients,
        "alice encrypts to the substituted key of bob's known device",
    )
    client.pop_notices()

    # 2. Injected device: bob suddenly has a second device holding mallory's keys.
    session.devices["bob"] = [record(21, 2, bob_keys), record(22, 2, mallory_keys)]
    client.directory.forget("bob")
    client.directory._by_kid.pop(mallory_keys.sig_kid, None)
    client.directory._by_kid.pop(mallory_keys.enc_kid, None)
    injected = message(
        BOB,
        22,
        mallory_keys,
        [alice_keys, bob_keys, mallory_keys],
        "injected",
        message_id=102,
        seq=3,
    )
    event = await client.open(injected)
    notices = client.pop_notices()
    warned = any(n.username == "bob" and mallory_keys.sig_kid in n.added for n in notices)
    figures.check(
        not trusted(event, "injected") or warned,
        f"message from an injected device of bob shown as trusted without a warning: {event}",
    )
    # Sending to bob: the injected device is a change the user is warned about.
    session.devices["bob"] = [record(21, 2, bob_keys), record(23, 2, other_keys)]
    await client._recipient_keys({"members": [{"username": "bob"}]}, refresh=True)
    notices = client.pop_notices()
    figures.check(
        any(n.username == "bob" and other_keys.sig_kid in n.added for n in notices),
        "no warning when sending to a changed device set",
    )
    session.devices["bob"] = [record(21, 2, bob_keys)]
    client.directory.forget("bob")
    await learn(client, "bob")

    # 3. A message whose signature belongs to another user: "from bob", signed by carol's
    #    device (a valid signature over A with bob's id).
    stolen = message(
        BOB,
        31,
        bob_keys,
        [alice_keys, bob_keys],
        "signed by carol",
        message_id=103,
        seq=4,
        signer_keys=carol_keys,
    )
    event = await client.open(stolen)
    figures.check(event.status != OK, f"carol's signature accepted as bob's: {event}")
    # ... or claiming bob's device id while carol signed
    stolen2 = dict(stolen, sender_device=21, id=104, seq=5)
    event = await client.open(stolen2)
    figures.check(event.status != OK, f"carol's signature under bob's device id: {event}")

    # 4. Replays: the same envelope under a new client_msg_id, and under a new id.
    original = message(BOB, 21, bob_keys, [alice_keys, bob_keys], "pay 10", message_id=105, seq=6)
    event = await client.open(original)
    figures.check(trusted(event, "pay 10"), f"original: {event}")
    renamed = dict(original, id=106, seq=7, client_msg_id=protocol.new_client_msg_id())
    event = await client.open(renamed)
    figures.check(event.status != OK, f"envelope replayed under a new client_msg_id: {event}")
    again = dict(original, id=107, seq=8)
    event = await client.open(again)
    figures.check(event.status == "replay", f"envelope replayed under a new id: {event}")
    moved = dict(original, id=108, seq=1, conversation=CONVERSATION + 1)
    event = await client.open(moved)
    figures.check(event.status != OK, f"envelope moved to another conversation: {event}")

    # 5. A ciphertext for two keys: alice's entry wraps another content key than bob's
    #    (each could decrypt to something else). The key commitment refuses it.
    msg_id = protocol.new_client_msg_id()
    k1, k2 = b"\x01" * 32, b"\x02" * 32
    envelope = protocol.seal_envelope(
        protocol.text_message("for bob"),
        conversation_id=CONVERSATION,
        sender_id=BOB[0],
        client_msg_id=msg_id,
        sender_keys=bob_keys,
        recipient_keys={bob_keys.enc_kid: bob_keys.enc_public},
        content_key=k1,
    )
    envelope["keys"][alice_keys.enc_kid] = protocol.b64encode(
        protocol._oaep(alice_keys.enc_public).encrypt(k2)
    )
    two_keys = dict(genuine, id=109, seq=9, client_msg_id=msg_id, envelope=envelope)
    event = await client.open(two_keys)
    figures.check(
        event.status != OK and "commitment" in (event.error or ""),
        f"two-key ciphertext not caught by the key commitment: {event}",
    )

    # 6. A malformed or downgraded envelope, and a device record with a bad proof.
    for label, change in [
        ("v=2", {"v": 2}),
        ("no keys", {"keys": {}}),
        ("sig_kid of an encryption key", {"sig_kid": bob_keys.enc_kid}),
        ("extra field", {"plain": "hi"}),
    ]:
        bad = dict(genuine, id=110, envelope={**genuine["envelope"], **change})
        event = await client.open(bad)
        figures.check(event.status != OK, f"{label}: {event}")
    session.devices["carol"] = [record(31, 3, carol_keys, proof_keys=mallory_keys)]
    client.directory.forget("carol")
    devices = await client.directory.devices_of("carol", refresh=True)
    figures.check(not devices, "a device record with a proof by other keys is used")
    figures.assert_clean()
