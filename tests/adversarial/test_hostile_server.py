"""A malicious server against the Python client (chatclient.ChatClient): the client is
under test, so a crafted hostile server is fair. ``HostileServer`` answers the client's
session calls from an in-memory world that each test bends the way an attacker would:
devices injected or substituted, identities planted, members added to a direct chat or
a group behind its roster, messages reordered or replayed, a new device shown a fake
identity of its own user.

Each attack must end refused or flagged (an event the person sees, sending paused or
refused, the message not shown as genuine text), and the text of anything sent while
the conversation is in that state never reaches the injected party: no stored envelope
holds a key for it, and its keys open none of them.
"""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from accounts.wire import iso_utc
from chatclient import protocol, roster
from chatclient.client import ChatClient
from chatclient.devices import NewDeviceLink
from chatclient.errors import ChatApiError, LinkError, SendingPaused, TamperedConversation
from chatclient.events import (
    OK,
    OUT_OF_ORDER,
    REPLAYED,
    UNVERIFIED,
    ConversationTampered,
    Rollback,
    RosterChange,
    TrustNotice,
)
from chatclient.state import StateStore
from tests.adversarial.figures import Figures

EARLIER = datetime.now(UTC) - timedelta(days=1)


def b64_spki(key) -> str:
    return protocol.b64encode(protocol.spki_of(key))


def identity_record(user_id: int, id_private, *, upgrade=None, replaced=None) -> dict:
    """An identity of §4 with a valid proof by ``id_private`` (anyone can make one)."""
    record = {
        "id_spki": b64_spki(id_private),
        "id_kid": protocol.compute_kid(protocol.spki_of(id_private)),
        "proof": protocol.sign_identity_proof(id_private, user_id),
        "upgrade": upgrade,
        "created": iso_utc(EARLIER),
    }
    if replaced is not None:
        record["replaced"] = replaced
    return record


def device_record(device_id: int, user_id: int, keys, *, cert_by=None, revoked=None) -> dict:
    """A device of §4 with a valid proof; certified by ``cert_by`` (an identity private
    key) if given."""
    cert = None
    if cert_by is not None:
        cert = protocol.sign_device_cert(cert_by, user_id, keys.enc_kid, keys.sig_kid)
    return {
        "id": device_id,
        "name": f"device {device_id}",
        "enc_spki": protocol.b64encode(keys.enc_spki),
        "sig_spki": protocol.b64encode(keys.sig_spki),
        "enc_kid": keys.enc_kid,
        "sig_kid": keys.sig_kid,
        "proof": protocol.sign_device_proof(keys, user_id),
        "cert": cert,
        "created": iso_utc(EARLIER),
        "revoked": revoked,
    }


class HostileServer:
    """The world as the server shows it. Tests edit ``users``, ``conversations``,
    ``rosters`` and ``messages`` directly; ``session(name)`` is what a client of that
    user talks to. Sends are stored (``stored``) the way an honest server would, after
    any error queued in ``send_errors``."""

    def __init__(self) -> None:
        self.users: dict[str, dict] = {}  # name -> {"id", "identity", "previous", "devices"}
        self.conversations: dict[int, dict] = {}
        self.rosters: dict[int, list[dict]] = {}
        self.messages: dict[int, list[dict]] = {}
        self.link_requests: dict[int, dict] = {}
        self.former: dict[int, set[str]] = {}  # conversation -> names who left or were removed
        self.send_errors: list[ChatApiError] = []
        self.uploads: list[list[dict]] = []  # history-key batches, in order
        self.stored: list[dict] = []  # every envelope a client got stored
        self.ids = itertools.count(1000)

    def add_user(self, name: str, user_id: int, keys=None, device_id: int | None = None):
        """A user with an identity (``keys.id_private``) and one certified device; a user
        without ``keys.id_private`` is not upgraded (a v1 device)."""
        identity = keys.id_private if keys is not None else None
        self.users[name] = {
            "id": user_id,
            "identity": identity_record(user_id, identity) if identity is not None else None,
            "previous": [],
            "devices": [],
        }
        if keys is not None:
            self.users[name]["devices"].append(
                device_record(device_id, user_id, keys, cert_by=identity)
            )

    def user_ref(self, name: str) -> dict:
        return {"id": self.users[name]["id"], "username": name}

    def name_of(self, user_id: int) -> str:
        return next(name for name, user in self.users.items() if user["id"] == user_id)

    def session(self, name: str) -> HostileSession:
        return HostileSession(self, name)

    def direct(self, cid: int, *names: str) -> dict:
        conversation = {
            "id": cid,
            "kind": "direct",
            "title": None,
            "members": [self.user_ref(n) for n in names],
            "owner": None,
            "last_seq": 0,
            "unread": 0,
            "created": iso_utc(EARLIER),
            "gid": None,
            "roster_head": None,
            "request": False,
        }
        self.conversations[cid] = conversation
        self.messages[cid] = []
        return conversation

    def store(
        self, cid: int, sender: str, device_id: int, client_msg_id: str, envelope, blobs=()
    ) -> dict:
        conversation = self.conversations[cid]
        conversation["last_seq"] += 1
        message = {
            "id": next(self.ids),
            "conversation": cid,
            "seq": conversation["last_seq"],
            "sender_id": self.users[sender]["id"],
            "sender": sender,
            "sender_device": device_id,
            "client_msg_id": client_msg_id,
            "created": iso_utc(datetime.now(UTC)),
            "envelope": envelope,
            "blobs": list(blobs),
            "deleted": False,
        }
        self.messages[cid].append(message)
        return message

    def apply_record(self, cid: int, record: dict) -> None:
        """Append a record and change members/owner/title as an honest server would."""
        conversation = self.conversations[cid]
        self.rosters[cid].append({**record, "created": iso_utc(datetime.now(UTC))})
        members = {m["id"] for m in conversation["members"]}
        if record["op"] in ("create", "add"):
            members |= set(record["subjects"])
        if record["op"] in ("remove", "leave"):
            members -= set(record["subjects"])
            gone = {self.name_of(i) for i in record["subjects"]}
            self.former.setdefault(cid, set()).update(gone)
        if record["op"] == "create":
            conversation["owner"] = self.user_ref(self.name_of(record["by"]))
        if record["op"] in ("create", "title"):
            conversation["title"] = record["title"]
        conversation["members"] = [self.user_ref(self.name_of(i)) for i in sorted(members)]
        conversation["roster_head"] = {"n": record["n"], "hash": record["hash"]}


class HostileSession:
    """The ``ChatSession`` calls a ``ChatClient`` makes, answered by ``HostileServer``."""

    def __init__(self, server: HostileServer, name: str) -> None:
        self.server = server
        self.name = name

    @property
    def me(self) -> dict:
        return self.server.users[self.name]

    async def get_session(self):
        return {**self.server.user_ref(self.name), "is_staff": False}

    async def user_identity(self, username):
        user = self.server.users.get(username)
        if user is None:
            raise ChatApiError(404, "not_found", "no such user")
        return {
            "user": self.server.user_ref(username),
            "identity": copy.deepcopy(user["identity"]),
            "previous": copy.deepcopy(user["previous"]),
        }

    async def user_devices(self, username, *, include_revoked=False):
        user = self.server.users.get(username)
        if user is None:
            raise ChatApiError(404, "not_found", "no such user")
        devices = [d for d in user["devices"] if include_revoked or d["revoked"] is None]
        return {"user": self.server.user_ref(username), "devices": copy.deepcopy(devices)}

    async def lookup_key(self, kid):
        for name, user in self.server.users.items():
            for device in user["devices"]:
                if kid in (device["enc_kid"], device["sig_kid"]):
                    return {"device": copy.deepcopy(device), "user": self.server.user_ref(name)}
        raise ChatApiError(404, "not_found", "no device holds this key")

    async def my_devices(self):
        return copy.deepcopy(self.me["devices"])

    async def conversations(self):
        mine = [
            c
            for c in self.server.conversations.values()
            if any(m["username"] == self.name for m in c["members"])
            or self.name in self.server.former.get(c["id"], ())
        ]
        return copy.deepcopy(mine)

    async def create_direct(self, username):
        for conversation in self.server.conversations.values():
            names = {m["username"] for m in conversation["members"]}
            if conversation["kind"] == "direct" and names == {self.name, username}:
                return copy.deepcopy(conversation)
        cid = next(self.server.ids)
        return copy.deepcopy(self.server.direct(cid, self.name, username))

    async def create_group(self, gid, title, record):
        cid = next(self.server.ids)
        conversation = self.server.direct(cid, self.name)
        conversation.update(kind="group", gid=gid, members=[])
        self.server.rosters[cid] = []
        self.server.apply_record(cid, record)
        return copy.deepcopy(conversation)

    async def roster(self, conversation_id, *, after=-1):
        return copy.deepcopy([r for r in self.server.rosters[conversation_id] if r["n"] > after])

    async def post_roster_record(self, conversation_id, record, *, gid=None):
        head = self.server.conversations[conversation_id]["roster_head"]
        if record["prev"] != head["hash"]:
            raise ChatApiError(409, "stale_roster", "stale", {"head": head})
        self.server.apply_record(conversation_id, record)
        return copy.deepcopy(self.server.conversations[conversation_id])

    async def history(self, conversation_id, *, before_seq=None, limit=None):
        messages = self.server.messages[conversation_id]
        if before_seq is not None:
            messages = [m for m in messages if m["seq"] < before_seq]
        page = messages[-(limit or 50) :]
        return {"messages": copy.deepcopy(page), "has_more": len(messages) > len(page)}

    async def send_message(self, conversation_id, client_msg_id, envelope, blobs=None):
        if self.server.send_errors:
            raise self.server.send_errors.pop(0)
        device_id = next(d["id"] for d in self.me["devices"] if d["sig_kid"] == envelope["sig_kid"])
        self.server.stored.append(envelope)
        message = self.server.store(
            conversation_id, self.name, device_id, client_msg_id, envelope, blobs or ()
        )
        return copy.deepcopy(message)

    # linking (§7.2)
    async def create_link_request(self, name, enc_spki, sig_spki, proof):
        request_id = next(self.server.ids)
        enc_kid = protocol.compute_kid(protocol.b64decode(enc_spki))
        sig_kid = protocol.compute_kid(protocol.b64decode(sig_spki))
        request = {
            "id": request_id,
            "name": name,
            "enc_spki": enc_spki,
            "sig_spki": sig_spki,
            "enc_kid": enc_kid,
            "sig_kid": sig_kid,
            "proof": proof,
            "status": "pending",
            "created": iso_utc(datetime.now(UTC)),
            "expires": iso_utc(datetime.now(UTC) + timedelta(minutes=10)),
            "device": None,
            "id_wrap": None,
            "user": self.name,
        }
        self.server.link_requests[request_id] = request
        return copy.deepcopy(request)

    async def link_requests(self):
        return [
            copy.deepcopy(r)
            for r in self.server.link_requests.values()
            if r["user"] == self.name and r["status"] == "pending"
        ]

    async def link_request(self, request_id):
        return copy.deepcopy(self.server.link_requests[request_id])

    async def approve_link_request(self, request_id, cert, id_wrap, *, device_id):
        request = self.server.link_requests[request_id]
        device = {
            "id": next(self.server.ids),
            "name": request["name"],
            **{k: request[k] for k in ("enc_spki", "sig_spki", "enc_kid", "sig_kid", "proof")},
            "cert": cert,
            "created": iso_utc(datetime.now(UTC)),
            "revoked": None,
        }
        self.me["devices"].append(device)
        request.update(status="approved", device=device, id_wrap=id_wrap)
        return copy.deepcopy(device)

    async def deny_link_request(self, request_id):
        self.server.link_requests[request_id]["status"] = "denied"

    async def upload_history_keys(self, device_id, wraps, *, acting_device_id):
        assert 1 <= len(wraps) <= 500
        self.server.uploads.append(list(wraps))
        return len(wraps)


# --- the cast ------------------------------------------------------------------------------

ALICE, BOB, CAROL, DAVE, EVE = 1, 2, 3, 4, 5


@pytest.fixture
def world(device_keys):
    """alice, bob and carol with identities and one certified device each; eve too (an
    account the server controls); mallory's keys belong to no one yet."""
    keys = {name: device_keys() for name in ("alice", "bob", "carol", "eve", "mallory", "x")}
    server = HostileServer()
    for name, user_id in (("alice", ALICE), ("bob", BOB), ("carol", CAROL), ("eve", EVE)):
        server.add_user(name, user_id, keys[name], device_id=user_id * 10 + 1)
    return server, keys


def client_of(server: HostileServer, name: str, keys, *, state=None) -> ChatClient:
    user = server.users[name]
    device_id = next(d["id"] for d in user["devices"] if d["sig_kid"] == keys.sig_kid)
    return ChatClient(
        server.session(name),
        keys,
        user_id=user["id"],
        username=name,
        device_id=device_id,
        state=state,
    )


def notices_of(client: ChatClient, kind) -> list:
    return [n for n in client.pop_notices() if isinstance(n, kind)]


def reached(server: HostileServer, keys) -> bool:
    """Whether any envelope a client stored holds a content key for ``keys``' device."""
    return any(keys.enc_kid in envelope["keys"] for envelope in server.stored)


async def test_an_honest_server_works(world):
    server, keys = world
    alice = client_of(server, "alice", keys["alice"])
    bob = client_of(server, "bob", keys["bob"])
    sent = await alice.send_text("bob", "hello bob")
    opened = await bob.open(sent)
    assert (opened.status, opened.text, opened.note) == (OK, "hello bob", None)
    assert set(sent["envelope"]["keys"]) == {keys["alice"].enc_kid, keys["bob"].enc_kid}
    assert (sent["envelope"]["n"], sent["envelope"]["head"]) == (1, "")
    assert not [n for n in alice.pop_notices() + bob.pop_notices() if isinstance(n, TrustNotice)]


def opens_any(server: HostileServer, keys, conversation_id: int) -> list[str]:
    """The texts ``keys`` can open among the stored envelopes (should be none)."""
    texts = []
    for message in server.messages.get(conversation_id, []):
        try:
            content = protocol.open_envelope(
                message["envelope"],
                conversation_id=message["conversation"],
                sender_id=message["sender_id"],
                client_msg_id=message["client_msg_id"],
                device_keys=keys,
                sig_public=protocol.import_public_key(
                    protocol.b64decode(
                        next(
                            d["sig_spki"]
                            for u in server.users.values()
                            for d in u["devices"]
                            if d["sig_kid"] == message["envelope"]["sig_kid"]
                        )
                    )
                ),
            )
        except protocol.ProtocolError:
            continue
        texts.append(content.get("text"))
    return texts


def forged_message(server, cid, sender, device_id, signer_keys, recipients, text, **fields):
    """A message "from" ``sender`` signed by ``signer_keys`` and stored by the server."""
    client_msg_id = fields.pop("client_msg_id", protocol.new_client_msg_id())
    envelope = protocol.seal_envelope(
        protocol.text_message(text),
        conversation_id=cid,
        sender_id=server.users[sender]["id"],
        client_msg_id=client_msg_id,
        n=fields.pop("n", 1),
        head=fields.pop("head", ""),
        sender_keys=signer_keys,
        recipient_keys={k.enc_kid: k.enc_public for k in recipients},
    )
    message = server.store(cid, sender, device_id, client_msg_id, envelope)
    message.update(fields)
    return message


async def test_an_injected_device_without_cert_is_never_used(world):
    figures = Figures("hostile server vs Python client: injected device, no cert")
    server, keys = world
    alice = client_of(server, "alice", keys["alice"])
    first = await alice.send_text("bob", "before")
    cid = first["conversation"]
    # The server adds a device for bob holding mallory's keys, with a valid proof of
    # possession for bob's user id and no cert; then says alice's device list is stale.
    server.users["bob"]["devices"].append(device_record(22, BOB, keys["mallory"]))
    server.send_errors.append(
        ChatApiError(409, "stale_devices", "", {"missing": [keys["mallory"].enc_kid], "extra": []})
    )
    with pytest.raises(SendingPaused) as paused:
        await alice.send_text(cid, "the plan")
    problems = paused.value.problems
    figures.check(
        [(p.kind, p.username) for p in problems] == [("uncertified_device", "bob")],
        f"sending is not paused with a warning naming bob: {problems}",
    )
    warned = notices_of(alice, TrustNotice)
    figures.check(
        any(n.kind == "uncertified_device" and n.username == "bob" for n in warned),
        f"no warning event naming bob: {warned}",
    )
    figures.check(not reached(server, keys["mallory"]), "encrypted to the injection")
    figures.check(opens_any(server, keys["mallory"], cid) == [], "the injected device reads")
    # Its messages are not opened as genuine.
    forged = forged_message(
        server, cid, "bob", 22, keys["mallory"], [keys["alice"], keys["mallory"]], "sell", n=5
    )
    event = await alice.open(forged)
    figures.check(
        event.status == UNVERIFIED and event.text is None, f"injected device trusted: {event}"
    )
    figures.assert_clean()


async def test_a_device_under_a_new_id_with_the_servers_key(world):
    figures = Figures("hostile server vs Python client: device replaced by the server's key")
    server, keys = world
    alice = client_of(server, "alice", keys["alice"])
    sent = await alice.send_text("bob", "before")
    cid = sent["conversation"]
    fake_identity = keys["x"].id_private  # the server's own identity key
    for cert_by, label in ((None, "no cert"), (fake_identity, "cert by another identity")):
        # bob's real device is retired; the server lists its own key as bob's device 23.
        retired = iso_utc(datetime.now(UTC))
        server.users["bob"]["devices"] = [
            device_record(21, BOB, keys["bob"], cert_by=keys["bob"].id_private, revoked=retired),
            device_record(23, BOB, keys["mallory"], cert_by=cert_by),
        ]
        alice.directory.forget("bob")
        with pytest.raises(SendingPaused) as paused:
            await alice.send_text(cid, f"secret ({label})")
        figures.check(
            any(p.username == "bob" for p in paused.value.problems),
            f"{label}: pause does not name bob: {paused.value.problems}",
        )
        forged = forged_message(
            server, cid, "bob", 23, keys["mallory"], [keys["alice"]], "it is me, bob", n=9
        )
        event = await alice.open(forged)
        figures.check(event.status == UNVERIFIED, f"{label}: the server's device trusted: {event}")
    figures.check(not reached(server, keys["mallory"]), "encrypted to the server's key")
    figures.check(opens_any(server, keys["mallory"], cid) == [], "the server's key reads")
    figures.assert_clean()


def substitute_identity(server: HostileServer, name: str, device_id: int, keys, identity):
    """The server replaces ``name``'s identity with ``identity`` (its own key, valid proof)
    and lists one device of ``keys`` certified by it."""
    user = server.users[name]
    user["identity"] = identity_record(user["id"], identity)
    user["devices"] = [device_record(device_id, user["id"], keys, cert_by=identity)]


async def test_an_identity_substituted_for_a_known_contact_blocks(world):
    figures = Figures("hostile server vs Python client: identity substituted, known contact")
    server, keys = world
    alice = client_of(server, "alice", keys["alice"])
    sent = await alice.send_text("bob", "before")
    cid = sent["conversation"]
    before = await alice.safety_number("bob")
    substitute_identity(server, "bob", 24, keys["mallory"], keys["x"].id_private)
    alice.directory.forget("bob")  # as after a devices_changed frame
    with pytest.raises(SendingPaused) as paused:
        await alice.send_text(cid, "the plan")
    figures.check(
        [(p.kind, p.username) for p in paused.value.problems] == [("identity_changed", "bob")],
        f"not a blocking identity change: {paused.value.problems}",
    )
    changes = [n for n in notices_of(alice, TrustNotice) if n.kind == "identity_changed"]
    figures.check(len(changes) == 1 and changes[0].username == "bob", f"notice: {changes}")
    forged = forged_message(server, cid, "bob", 24, keys["mallory"], [keys["alice"]], "hi", n=7)
    event = await alice.open(forged)
    figures.check(event.status == UNVERIFIED, f"a device of the new identity trusted: {event}")
    number = await alice.safety_number("bob")
    figures.check(
        number.number == before.number and number.pending not in (None, before.number),
        f"the safety number does not show the change: {number}",
    )
    figures.check(not reached(server, keys["mallory"]), "encrypted to the substituted identity")
    # bob's old messages still verify under the identity alice accepted.
    figures.check((await alice.open(sent)).status == OK, "an old genuine message is refused")
    figures.assert_clean()


async def test_an_identity_substituted_for_a_new_contact_is_accepted_and_shown(world):
    figures = Figures("hostile server vs Python client: identity substituted, new contact")
    server, keys = world
    alice = client_of(server, "alice", keys["alice"])
    substitute_identity(server, "carol", 34, keys["mallory"], keys["x"].id_private)
    sent = await alice.send_text("carol", "hello carol")  # trust on first use
    figures.check(
        set(sent["envelope"]["keys"]) == {keys["alice"].enc_kid, keys["mallory"].enc_kid},
        "first use did not accept the listed identity",
    )
    shown = await alice.safety_number("carol")
    real = protocol.format_safety_number(
        protocol.safety_number(ALICE, keys["alice"].id_kid, CAROL, keys["carol"].id_kid)
    )
    fake = protocol.format_safety_number(
        protocol.safety_number(ALICE, keys["alice"].id_kid, CAROL, keys["x"].id_kid)
    )
    figures.check(
        shown.number == fake != real and not shown.verified,
        f"the safety number does not reveal the substitution: {shown}",
    )
    figures.check(len(shown.number.split()) == 12, "not 12 groups of 5")
    figures.assert_clean()


async def test_a_new_device_shown_a_fake_identity_of_its_own_user(world):
    figures = Figures("hostile server vs Python client: fake own identity for a new device")
    server, keys = world
    alice = client_of(server, "alice", keys["alice"])
    new_session = server.session("alice")
    real_identity = server.users["alice"]["identity"]
    server.users["alice"]["identity"] = identity_record(ALICE, keys["x"].id_private)
    link = await NewDeviceLink.start(new_session, name="laptop", keys=keys["mallory"])
    server.users["alice"]["identity"] = real_identity  # the old device sees the real one
    (request,) = await alice.link_requests()
    figures.check(
        not protocol.same_link_code(link.code, request.code),
        f"the two link codes match: {link.code} / {request.code}",
    )
    with pytest.raises(LinkError):
        await alice.approve_link(request.id, code=link.code)
    figures.check(not [d for d in server.users["alice"]["devices"] if d["id"] >= 1000], "approved")
    # Even an approval without comparing cannot hand the new device a key that matches.
    await alice.approve_link(request.id)
    with pytest.raises(LinkError) as refused:
        await link.wait(poll=0, timeout=5)
    figures.check("another identity" in str(refused.value), f"wrong refusal: {refused.value}")
    figures.assert_clean()


async def test_a_history_transfer_resumes_where_it_stopped(world, monkeypatch):
    from chatclient import linking

    server, keys = world
    alice = client_of(server, "alice", keys["alice"])
    bob = client_of(server, "bob", keys["bob"])
    for i in range(5):
        await alice.send_text("bob", f"a{i}")
    await bob.send_text("alice", "b0")
    laptop = device_record(12, ALICE, keys["mallory"], cert_by=keys["alice"].id_private)
    server.users["alice"]["devices"].append(laptop)
    monkeypatch.setattr(linking, "MAX_WRAPS", 2)
    calls = []
    original = HostileSession.upload_history_keys

    async def failing_second(self, device_id, wraps, *, acting_device_id):
        calls.append(len(wraps))
        if len(calls) == 2:
            raise ConnectionError("the transfer is interrupted")
        return await original(self, device_id, wraps, acting_device_id=acting_device_id)

    monkeypatch.setattr(HostileSession, "upload_history_keys", failing_second)
    progress = []
    with pytest.raises(ConnectionError):
        await alice.transfer_history(12, progress=lambda done, total: progress.append(done))
    assert progress and progress[-1] <= 6
    posted = await alice.transfer_history(12)
    batches = [[w["message"] for w in batch] for batch in server.uploads]
    ids = [m["id"] for m in server.messages[next(iter(server.messages))]]
    assert batches[0] == ids[::-1][:2]  # newest first, at most MAX_WRAPS a batch
    assert posted == 4 and sorted(sum(batches, [])) == sorted(ids)
    assert await alice.transfer_history(12) == 0  # done: nothing again


async def test_linking_hands_over_identity_and_trust(world):
    server, keys = world
    alice = client_of(server, "alice", keys["alice"])
    await alice.send_text("bob", "hello")
    await alice.mark_verified("bob")
    link = await NewDeviceLink.start(server.session("alice"), name="laptop", keys=keys["mallory"])
    (request,) = await alice.link_requests()
    assert request.code == link.code
    device = await alice.approve_link(request.id, code=link.code.replace(" ", "").upper())
    linked = await link.wait(poll=0, timeout=5)
    assert linked.keys.id_kid == keys["alice"].id_kid and linked.device["id"] == device["id"]
    assert linked.trust["identities"][str(BOB)] == {"id_kid": keys["bob"].id_kid, "verified": True}
    laptop = ChatClient(
        server.session("alice"),
        linked.keys,
        user_id=ALICE,
        username="alice",
        device_id=device["id"],
    )
    laptop.trust.adopt(linked.trust)
    assert (await laptop.safety_number("bob")).verified
    sent = await laptop.send_text("bob", "from the laptop")
    assert (await client_of(server, "bob", keys["bob"]).open(sent)).text == "from the laptop"


async def test_a_v1_contacts_identity_needs_a_valid_upgrade_signature(world, tmp_path):
    figures = Figures("hostile server vs Python client: v1 contact's identity planted")
    server, keys = world
    dave_v1 = protocol.DeviceKeys(keys["x"].enc_private, keys["x"].sig_private)  # no identity
    dave_identity = keys["carol"].id_private  # the key dave's device will make (any key)
    planted = keys["mallory"].id_private
    valid_upgrade = protocol.sign_identity_upgrade(
        dave_v1, DAVE, protocol.compute_kid(protocol.spki_of(dave_identity))
    )
    forged_upgrade = {
        "sig_kid": dave_v1.sig_kid,
        "sig": protocol.b64encode(
            protocol.pss_sign(
                keys["mallory"].sig_private,
                protocol.identity_upgrade_message(
                    DAVE, protocol.compute_kid(protocol.spki_of(planted))
                ),
            )
        ),
    }
    cases = [
        ("no upgrade signature", planted, None, False),
        ("an upgrade signature by another key", planted, forged_upgrade, False),
        ("the genuine upgrade", dave_identity, valid_upgrade, True),
    ]
    for label, identity, upgrade, silent in cases:
        server.add_user("dave", DAVE)
        server.users["dave"]["devices"] = [device_record(41, DAVE, dave_v1)]
        alice = client_of(server, "alice", keys["alice"])  # a fresh state for each case
        sent = await alice.send_text("dave", "hi dave")  # as in v1: "not upgraded"
        figures.check(dave_v1.enc_kid in sent["envelope"]["keys"], f"{label}: v1 contact unused")
        server.users["dave"]["identity"] = identity_record(DAVE, identity, upgrade=upgrade)
        server.users["dave"]["devices"] = [device_record(41, DAVE, dave_v1, cert_by=identity)]
        alice.directory.forget("dave")
        if silent:
            again = await alice.send_text("dave", "after the upgrade")
            kinds = [n.kind for n in notices_of(alice, TrustNotice)]
            figures.check(
                kinds == ["identity_upgraded"] and dave_v1.enc_kid in again["envelope"]["keys"],
                f"{label}: not accepted silently: {kinds}",
            )
            continue
        with pytest.raises(SendingPaused) as paused:
            await alice.send_text("dave", "the plan")
        figures.check(
            [p.kind for p in paused.value.problems] == ["identity_changed"],
            f"{label}: silently accepted: {paused.value.problems}",
        )
    # A device whose state came from the v1 client (device sets by name) knows dave too.
    server.users["dave"]["identity"] = identity_record(DAVE, planted)
    server.users["dave"]["devices"] = [device_record(41, DAVE, dave_v1, cert_by=planted)]
    path = tmp_path / "state.json"
    device_id = server.users["alice"]["devices"][0]["id"]
    v1_state = {"device_id": device_id, "cursors": {}, "known_devices": {"dave": [dave_v1.sig_kid]}}
    path.write_text(json.dumps(v1_state))
    alice = client_of(server, "alice", keys["alice"], state=StateStore(path, device_id=device_id))
    with pytest.raises(SendingPaused) as paused:
        await alice.send_text("dave", "the plan")
    figures.check(
        [p.kind for p in paused.value.problems] == ["identity_changed"],
        f"a v1 client's state: planted identity silently accepted: {paused.value.problems}",
    )
    figures.check(not reached(server, keys["mallory"]), "encrypted under the planted identity")
    figures.assert_clean()


async def test_a_third_member_in_a_direct_chat(world):
    figures = Figures("hostile server vs Python client: third member in a direct chat")
    server, keys = world
    alice = client_of(server, "alice", keys["alice"])
    sent = await alice.send_text("bob", "just us")
    cid = sent["conversation"]
    server.conversations[cid]["members"].append(server.user_ref("eve"))
    with pytest.raises(TamperedConversation):
        await alice.send_text(cid, "the plan")
    events = notices_of(alice, ConversationTampered)
    figures.check([e.conversation for e in events] == [cid], f"no tampered event: {events}")
    with pytest.raises(TamperedConversation):  # it stays so, even if the server backs off
        server.conversations[cid]["members"].pop()
        await alice.send_text(cid, "the plan again")
    # A direct conversation first shown with three people is tampered from the start.
    three = server.direct(77, "alice", "bob", "eve")
    with pytest.raises(TamperedConversation):
        await alice.send_text(three["id"], "hello?")
    figures.check(not reached(server, keys["eve"]), "eve's device got a key")
    figures.check(opens_any(server, keys["eve"], cid) == [], "eve reads the direct chat")
    figures.assert_clean()


async def group_of_three(server, keys):
    alice = client_of(server, "alice", keys["alice"])
    group = await alice.create_group("plans", ["bob", "carol"])
    return alice, group


async def test_a_group_member_the_roster_does_not_have(world):
    figures = Figures("hostile server vs Python client: group member not in the roster")
    server, keys = world
    alice, group = await group_of_three(server, keys)
    cid = group["id"]
    created = [e for e in notices_of(alice, RosterChange)]
    figures.check(
        [e.text for e in created] == ["you created the group “plans” with bob and carol"],
        f"roster events: {created}",
    )
    sent = await alice.send_text(cid, "members only")
    figures.check(
        set(sent["envelope"]["keys"]) == {keys[n].enc_kid for n in ("alice", "bob", "carol")}
        and sent["envelope"]["head"] == server.conversations[cid]["roster_head"]["hash"],
        "not sealed for the roster's members at its head",
    )
    # eve appears in the member list without a record.
    server.conversations[cid]["members"].append(server.user_ref("eve"))
    server.conversations[cid]["roster_head"] = dict(server.conversations[cid]["roster_head"])
    with pytest.raises(TamperedConversation):
        await alice.send_text(cid, "the plan")
    events = notices_of(alice, ConversationTampered)
    figures.check(len(events) == 1 and "members" in events[0].reason, f"events: {events}")
    figures.check(not reached(server, keys["eve"]), "eve's device got a key")
    figures.check(opens_any(server, keys["eve"], cid) == [], "eve reads the group")
    figures.assert_clean()


async def test_forged_roster_records_and_heads(world):
    figures = Figures("hostile server vs Python client: forged roster records and heads")
    server, keys = world
    attacks = {}

    def record_by(signer_keys, by, op, subjects, *, title=None, tamper=None):
        def attack(cid):
            head = server.conversations[cid]["roster_head"]
            record = roster.make_record(
                signer_keys,
                gid=server.conversations[cid]["gid"],
                n=head["n"] + 1,
                prev=head["hash"],
                op=op,
                subjects=subjects,
                by=by,
                title=title,
            )
            if tamper:
                tamper(record)
            server.apply_record(cid, record)

        return attack

    attacks["eve adds herself (not the owner)"] = record_by(keys["eve"], EVE, "add", [EVE])
    attacks["the server's key signs as alice"] = record_by(keys["mallory"], ALICE, "add", [EVE])
    attacks["a record with a wrong hash"] = record_by(
        keys["alice"], ALICE, "add", [EVE], tamper=lambda r: r.update(hash="0" * 64)
    )

    def change_gid(cid):
        server.conversations[cid]["gid"] = str(uuid.uuid4())

    def drop_head(cid):
        server.rosters[cid].pop()  # the head is one the server cannot show
        server.conversations[cid]["roster_head"] = {"n": 5, "hash": "ab" * 32}

    attacks["the group id changes"] = change_gid
    attacks["a head outside the chain"] = drop_head
    for label, attack in attacks.items():
        alice, group = await group_of_three(server, keys)
        cid = group["id"]
        await alice.set_title(cid, "new plans")  # a genuine change verifies
        attack(cid)
        alice.pop_notices()
        try:
            await alice.send_text(cid, "the plan")
            figures.fail(f"{label}: sent")
        except TamperedConversation:
            figures.check(bool(notices_of(alice, ConversationTampered)), f"{label}: no event")
    # A message naming a head the chain does not have marks the group too.
    alice, group = await group_of_three(server, keys)
    cid = group["id"]
    bob = client_of(server, "bob", keys["bob"])
    forged = forged_message(
        server, cid, "alice", 11, keys["alice"], [keys["bob"]], "hi", head="cd" * 32
    )
    event = await bob.open(forged)
    figures.check(event.status == UNVERIFIED, f"a message with an unknown head: {event}")
    figures.check(bool(notices_of(bob, ConversationTampered)), "unknown head not flagged")
    figures.check(not reached(server, keys["eve"]), "eve's device got a key")
    figures.assert_clean()


async def test_roster_changes_are_verified_events(world):
    server, keys = world
    alice, group = await group_of_three(server, keys)
    cid = group["id"]
    carol, bob = client_of(server, "carol", keys["carol"]), client_of(server, "bob", keys["bob"])
    await carol.conversation(cid)  # as on the `conversation` frame that tells them
    await bob.conversation(cid)
    carol.pop_notices()
    await alice.add_members(cid, ["eve"])
    await alice.remove_members(cid, ["carol"])
    await bob.set_title(cid, "new plans")
    await bob.leave(cid)
    await bob.conversation(cid)
    texts = [e.text for e in notices_of(bob, RosterChange)]
    assert texts == [
        "alice created the group “plans” with you and carol",
        "alice added eve",
        "alice removed carol",
        "title changed to “new plans” by you",
        "you left",
    ]
    await carol.conversation(cid)
    assert [e.text for e in notices_of(carol, RosterChange)] == [
        "alice added eve",
        "alice removed you",
        "title changed to “new plans” by bob",
        "bob left",
    ]
    with pytest.raises(Exception, match="not a member"):
        await carol.send_text(cid, "still here?")
    sent = await alice.send_text(cid, "without bob and carol")
    assert set(sent["envelope"]["keys"]) == {keys["alice"].enc_kid, keys["eve"].enc_kid}


async def test_reordered_seqs_are_flagged(world):
    figures = Figures("hostile server vs Python client: reordered seqs")
    server, keys = world
    bob = client_of(server, "bob", keys["bob"])
    alice = client_of(server, "alice", keys["alice"])
    first = await bob.send_text("alice", "Do NOT sell.")
    second = await bob.send_text("alice", "Sell everything now.")
    figures.check(
        (first["envelope"]["n"], second["envelope"]["n"]) == (1, 2), "counters do not rise"
    )
    swapped = [dict(second, seq=first["seq"]), dict(first, seq=second["seq"])]
    events = [await alice.open(m) for m in swapped]
    figures.check(
        [e.status for e in events] == [OK, OUT_OF_ORDER] and events[1].text is None,
        f"swapped order shown as fine: {[(e.status, e.text) for e in events]}",
    )
    figures.assert_clean()


async def test_a_replay_after_a_reload_is_flagged(world, tmp_path):
    figures = Figures("hostile server vs Python client: replay after a reload")
    server, keys = world
    bob = client_of(server, "bob", keys["bob"])
    path = tmp_path / "alice-state.json"
    device_id = server.users["alice"]["devices"][0]["id"]
    alice = client_of(server, "alice", keys["alice"], state=StateStore(path, device_id=device_id))
    original = await bob.send_text("alice", "pay carol 10")
    figures.check((await alice.open(original)).status == OK, "the original is refused")
    alice.save()
    # Reload: a new client from the saved state; the server re-serves the envelope.
    reloaded = client_of(
        server, "alice", keys["alice"], state=StateStore(path, device_id=device_id)
    )
    replay = dict(original, id=original["id"] + 500, seq=original["seq"] + 7)
    event = await reloaded.open(replay)
    figures.check(
        event.status == REPLAYED and event.text is None and event.replay_of == original["id"],
        f"a replay after a reload shown as new: {event}",
    )
    again = await reloaded.open(original)
    figures.check(again.status == OK, f"the real original flagged: {again}")
    # A different message at a seq already shown: a rollback, said and read again.
    other = await bob.send_text("alice", "other")
    forked = dict(other, seq=original["seq"])
    event = await reloaded.open(forked)
    rollbacks = notices_of(reloaded, Rollback)
    figures.check(
        [r.seq for r in rollbacks] == [original["seq"]], f"no rollback event: {rollbacks}"
    )
    figures.check(event.status == OK, f"after the rollback it is judged afresh: {event}")
    # The server loses history: last_seq below what was shown. Said, forgotten, resynced.
    reloaded.advance(original["conversation"], forked["seq"])
    server.conversations[original["conversation"]]["last_seq"] = original["seq"] - 1
    await reloaded.conversations()
    rollbacks = notices_of(reloaded, Rollback)
    figures.check(
        [r.seq for r in rollbacks] == [original["seq"]]
        and reloaded.cursor(original["conversation"]) == original["seq"] - 1,
        f"a shorter history is not a rollback: {rollbacks}",
    )
    figures.assert_clean()


async def test_misattributed_moved_and_malformed_messages(world):
    figures = Figures("hostile server vs Python client: misattributed and malformed messages")
    server, keys = world
    alice = client_of(server, "alice", keys["alice"])
    bob = client_of(server, "bob", keys["bob"])
    genuine = await bob.send_text("alice", "genuine")
    cid = genuine["conversation"]
    figures.check((await alice.open(genuine)).status == OK, "the genuine message is refused")
    # "From bob", signed by carol's certified device (a valid signature over bob's A).
    stolen = forged_message(server, cid, "bob", 31, keys["carol"], [keys["alice"]], "carol", n=3)
    figures.check((await alice.open(stolen)).status == UNVERIFIED, "carol's signature as bob's")
    figures.check(
        (await alice.open(dict(stolen, sender_device=21))).status == UNVERIFIED,
        "carol's signature under bob's device id",
    )
    # The same envelope under a new client_msg_id, or moved to another conversation.
    renamed = dict(genuine, id=900, seq=9, client_msg_id=protocol.new_client_msg_id())
    figures.check((await alice.open(renamed)).status == UNVERIFIED, "renamed envelope opens")
    other = server.direct(78, "alice", "bob")
    moved = dict(genuine, id=901, seq=1, conversation=other["id"])
    figures.check((await alice.open(moved)).status == UNVERIFIED, "moved envelope opens")
    # Two content keys: alice's entry wraps another key than bob's. The commitment refuses.
    msg_id = protocol.new_client_msg_id()
    envelope = protocol.seal_envelope(
        protocol.text_message("for bob"),
        conversation_id=cid,
        sender_id=BOB,
        client_msg_id=msg_id,
        n=4,
        head="",
        sender_keys=keys["bob"],
        recipient_keys={keys["bob"].enc_kid: keys["bob"].enc_public},
        content_key=b"\x01" * 32,
    )
    envelope["keys"][keys["alice"].enc_kid] = protocol.b64encode(
        protocol._oaep(keys["alice"].enc_public).encrypt(b"\x02" * 32)
    )
    two_keys = dict(genuine, id=902, seq=10, client_msg_id=msg_id, envelope=envelope)
    event = await alice.open(two_keys)
    figures.check(
        event.status == UNVERIFIED and "commitment" in (event.error or ""),
        f"two-key ciphertext: {event}",
    )
    for label, change in [
        ("v=1 label on a v2 envelope", {"v": 1}),
        ("no keys", {"keys": {}}),
        ("sig_kid of an encryption key", {"sig_kid": keys["bob"].enc_kid}),
        ("extra field", {"plain": "hi"}),
        ("n changed", {"n": 2}),
        ("head added", {"head": "ab" * 32}),
    ]:
        bad = dict(genuine, id=903, envelope={**genuine["envelope"], **change})
        event = await alice.open(bad)
        figures.check(event.status != OK, f"{label}: {event}")
    # A known device's keys substituted under its id, and a record with a bad proof.
    server.users["bob"]["devices"] = [
        device_record(21, BOB, keys["mallory"], cert_by=keys["bob"].id_private)
    ]
    alice.directory.forget("bob")
    view = await alice.directory.user("bob")
    figures.check(not view.devices, "a known device id with other keys is used")
    record = device_record(32, CAROL, keys["carol"], cert_by=keys["carol"].id_private)
    record["proof"] = protocol.sign_device_proof(keys["mallory"], CAROL)
    server.users["carol"]["devices"] = [record]
    view = await alice.directory.user("carol")
    figures.check(not view.devices, "a device record with a proof by other keys is used")
    figures.assert_clean()
