"""The asyncio client library against a live daphne + Redis: first devices and linking
with history, counters and re-seals (stale_devices, stale_counter, stale_roster),
checks on incoming messages, groups with signed rosters, the v1 upgrade, and the
README's bot."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
from pathlib import Path

import pytest

from chatclient import attachments, keystore, protocol
from chatclient.client import ChatClient, connect
from chatclient.devices import NewDeviceLink, setup_first_device
from chatclient.display import message_line
from chatclient.errors import (
    ChatApiError,
    ChatError,
    DeviceRevoked,
    MessageTooLong,
    SocketClosed,
)
from chatclient.events import (
    REPLAYED,
    IncomingMessage,
    Rollback,
    RosterChange,
    Status,
    TrustNotice,
)
from chatclient.session import ChatSession
from chatclient.state import StateStore
from chatclient.ws import ChatSocket

pytestmark = pytest.mark.processes

PASSWORD = "library-password-9x!"


async def new_client(base_url: str, name: str, keys: protocol.DeviceKeys, **options) -> ChatClient:
    """Register ``name`` and set up her first device with ``keys`` (identity included)."""
    session = ChatSession(base_url)
    user = await session.register(name, PASSWORD)
    keys, _, device = await setup_first_device(
        session, name="test", passphrase="p", keys=keys, iterations=100_000
    )
    return ChatClient(
        session, keys, user_id=user["id"], username=name, device_id=device["id"], **options
    )


async def linked_device(
    owner: ChatClient, keys: protocol.DeviceKeys, *, history: bool = False
) -> ChatClient:
    """A second device of ``owner``'s user, linked and approved by ``owner`` (§7.2)."""
    session = ChatSession(owner.session.base_url)
    await session.login(owner.username, PASSWORD)
    plain = protocol.DeviceKeys(keys.enc_private, keys.sig_private)
    link = await NewDeviceLink.start(session, name="second", keys=plain)
    (request,) = await owner.link_requests()
    assert request.code == link.code  # the same code on both screens
    device = await owner.approve_link(request.id, code=link.code)
    linked = await link.wait(poll=0.05, timeout=30)
    client = ChatClient(
        session, linked.keys, user_id=owner.user_id, username=owner.username, device_id=device["id"]
    )
    client.trust.adopt(linked.trust)
    if history:
        await owner.transfer_history(device["id"])
    return client


class Recorder:
    """A client's ``events()`` in a task; tests await the events they need."""

    def __init__(self, client: ChatClient, **options) -> None:
        self.client = client
        self.events: list = []
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task = asyncio.create_task(self._run(options))

    async def _run(self, options) -> None:
        async for event in self.client.events(**options):
            self.events.append(event)
            self.queue.put_nowait(event)

    async def wait_for(self, predicate, timeout: float = 30.0):
        """The first event so far, or to come, that matches ``predicate``."""
        for event in self.events:
            if predicate(event):
                return event
        async with asyncio.timeout(timeout):
            while True:
                event = await self.queue.get()
                if predicate(event):
                    return event

    async def connected(self) -> None:
        await self.wait_for(lambda e: isinstance(e, Status) and e.state == "connected")

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def next_frame(socket: ChatSocket, expected: dict, timeout: float = 30.0) -> dict:
    """The next frame that holds ``expected``'s fields (others are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await socket.recv_frame()
            if expected.items() <= frame.items():
                return frame


def readme_bot(base_url: str, key_file, state_file):
    """The README's bot example, run as written: its ``main`` with this server's URL and
    these files (it reads its secrets from the environment)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    code = readme.split("A bot in a few lines", 1)[1].split("```python\n", 1)[1]
    code = code.split("```", 1)[0].replace("asyncio.run(main())", "")
    for text, value in (
        ("https://chat.example.org", base_url),
        ("echobot-key.json", str(key_file)),
        ("echobot-state.json", str(state_file)),
    ):
        assert text in code
        code = code.replace(text, value)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace["main"]


def texts(events) -> list[str]:
    return [e.text for e in events if isinstance(e, IncomingMessage) and not e.own]


@pytest.fixture
def server(live_stack):
    return live_stack()


async def test_session_errors_and_csrf(server):
    session = ChatSession(server.base_url)
    assert await session.get_session() is None
    assert session.csrf_token
    with pytest.raises(ChatApiError) as caught:
        await session.conversations()
    assert (caught.value.status, caught.value.code) == (401, "not_authenticated")
    with pytest.raises(ChatApiError) as caught:
        await session.login("nobody", "x")
    assert caught.value.code == "invalid_credentials"
    user = await session.register("carol", "carol-password-9x!")
    restored = ChatSession.from_state(json.loads(json.dumps(session.export_state())))
    assert (await restored.get_session())["id"] == user["id"]
    with pytest.raises(ChatApiError) as caught:
        await restored.request("POST", "/api/conversations/", {"members": []})
    assert caught.value.code == "bad_request"


async def test_websocket_needs_login_and_own_device(server, device_keys):
    alice = await new_client(server.base_url, "alice", device_keys())
    bob = await new_client(server.base_url, "bob", device_keys())
    async with await ChatSocket.open(alice.session, alice.device_id) as sock:
        await sock.send_frame({"type": "ping"})
        assert (await sock.recv_frame(timeout=10)) == {"type": "pong"}
    async with await ChatSocket.open(alice.session, bob.device_id) as sock:
        with pytest.raises(SocketClosed) as caught:
            await sock.recv_frame(timeout=10)
    assert caught.value.code == 4403 and caught.value.fatal
    anonymous = ChatSession(server.base_url)
    async with await ChatSocket.open(anonymous, 1) as sock:
        with pytest.raises(SocketClosed) as caught:
            await sock.recv_frame(timeout=10)
    assert caught.value.code == 4401


async def test_a_linked_device_reads_history_and_contacts_see_no_change(server, device_keys):
    alice = await new_client(server.base_url, "alice", device_keys())
    bob = await new_client(server.base_url, "bob", device_keys())
    first = await alice.send_text("bob", "one")
    await alice.send_text("bob", "two")
    bob_number = await bob.safety_number("alice")
    bob.pop_notices()
    # alice links a second device; it gets the identity, her trust and the history.
    await alice.mark_verified("bob")
    laptop = await linked_device(alice, device_keys(), history=True)
    assert (await laptop.safety_number("bob")).verified
    page, _ = await laptop.history(first["conversation"])
    assert [m.text for m in page] == ["one", "two"] and all(m.verified for m in page)
    # bob's view does not change: no warning, same safety number; his next message
    # (after stale_devices) reaches both of alice's devices.
    codes = []
    original = bob.session.send_message

    async def recording(*args, **kwargs):
        try:
            return await original(*args, **kwargs)
        except ChatApiError as error:
            codes.append(error.code)
            raise

    bob.session.send_message = recording
    reply = await bob.send_text("alice", "three")
    assert codes == ["stale_devices"]
    assert laptop.keys.enc_kid in reply["envelope"]["keys"]
    assert (await laptop.open(reply)).text == "three"
    assert (await bob.safety_number("alice")).number == bob_number.number
    assert not [n for n in bob.pop_notices() if isinstance(n, TrustNotice)]


async def test_counters_rise_and_stale_counter_reseals(server, device_keys):
    alice = await new_client(server.base_url, "alice", device_keys())
    await new_client(server.base_url, "bob", device_keys())
    sent = [await alice.send_text("bob", f"m{i}") for i in range(3)]
    assert [m["envelope"]["n"] for m in sent] == [1, 2, 3]
    # The key file moved to a machine with no state: it starts at 1 and learns from
    # stale_counter, sealing again with a higher n.
    moved = ChatClient(
        alice.session,
        alice.keys,
        user_id=alice.user_id,
        username="alice",
        device_id=alice.device_id,
    )
    again = await moved.send_text("bob", "from the new machine")
    assert again["envelope"]["n"] == 4 and again["seq"] == 4


async def test_incoming_checks_tampering_replay_and_revocation(server, device_keys):
    alice = await new_client(server.base_url, "alice", device_keys())
    bob = await new_client(server.base_url, "bob", device_keys())
    sent = await alice.send_text("bob", "genuine")
    ok = await bob.open(sent)
    assert ok.verified and ok.text == "genuine" and not ok.own

    envelope = dict(sent["envelope"])
    ct = protocol.b64decode(envelope["ct"])
    envelope["ct"] = protocol.b64encode(bytes([ct[0] ^ 1]) + ct[1:])
    tampered = await bob.open({**sent, "id": 500, "seq": 50, "envelope": envelope})
    assert tampered.status == "unverified" and tampered.text is None
    assert "genuine" not in message_line(tampered)
    assert "could not be decrypted or verified" in message_line(tampered)

    wrong_sender = await bob.open({**sent, "id": 501, "sender_id": bob.user_id})
    assert wrong_sender.status == "unverified" and "another user" in wrong_sender.error

    replay = await bob.open({**sent, "id": 502, "seq": 9})
    assert replay.status == REPLAYED and replay.replay_of == sent["id"] and replay.text is None
    assert (await bob.open(sent)).verified  # the same id again is not a replay

    # a restored server hands out a lost message's id again, at a higher seq: a rollback
    # from the lower seq, and the new message is judged afresh (no error)
    lost = await alice.send_text("bob", "lost in the restore")
    after = await alice.send_text("bob", "sent after it")
    first = await bob.open({**lost, "id": 600, "seq": 20})
    reused = await bob.open({**after, "id": 600, "seq": 21})
    assert first.verified and reused.verified and reused.text == "sent after it"
    assert [(n.conversation, n.seq) for n in bob.notices if isinstance(n, Rollback)] == [
        (sent["conversation"], 20)
    ]

    # alice revokes her device: old messages still verify, "newer" ones do not.
    await alice.session.revoke_device(alice.device_id)
    fresh = ChatClient(bob.session, bob.keys, user_id=bob.user_id, username="bob", device_id=0)
    assert (await fresh.open(sent)).verified
    later = await fresh.open({**sent, "id": 503, "created": "2999-01-01T00:00:00.000Z"})
    assert later.status == "unverified" and "not active" in later.error


async def test_groups_rosters_and_stale_roster(server, device_keys):
    alice = await new_client(server.base_url, "alice", device_keys())
    bob = await new_client(server.base_url, "bob", device_keys())
    carol = await new_client(server.base_url, "carol", device_keys())
    await new_client(server.base_url, "dave", device_keys())
    group = await alice.create_group("plans", ["bob"])
    cid = group["id"]
    listening = Recorder(bob)
    try:
        await listening.connected()
        # alice's second device adds carol while the first holds the old head: its next
        # message meets stale_roster, verifies the new record and seals again (same n)
        # for the new members; its own add meets stale_roster too and is signed again.
        tablet = await linked_device(alice, device_keys())
        await tablet.add_members(cid, ["carol"])
        sent = await alice.send_text(cid, "welcome carol")
        assert sent["envelope"]["n"] == 1
        assert carol.keys.enc_kid in sent["envelope"]["keys"]
        await alice.add_members(cid, ["dave"])
        await alice.remove_members(cid, ["dave"])
        await carol.set_title(cid, "new plans")
        await carol.leave(cid)
        await listening.wait_for(lambda e: isinstance(e, RosterChange) and e.op == "leave")
        changes = [e.text for e in listening.events if isinstance(e, RosterChange)]
        assert changes == [
            "alice created the group “plans” with you",
            "alice added carol",
            "alice added dave",
            "alice removed dave",
            "title changed to “new plans” by carol",
            "carol left",
        ]
        await listening.wait_for(lambda e: isinstance(e, IncomingMessage))
        assert texts(listening.events) == ["welcome carol"]
    finally:
        await listening.stop()
    assert (await carol.conversation(cid))["title"] == "new plans"
    last = await bob.send_text(cid, "just us")
    assert set(last["envelope"]["keys"]) == {
        alice.keys.enc_kid,
        bob.keys.enc_kid,
        tablet.keys.enc_kid,
    }


def v1_device(server, user_id: int, keys: protocol.DeviceKeys) -> int:
    """A device as v1 registered it (proof, no cert), put straight in the database: the
    API now requires a cert. Returns its id."""
    spki = [base64.b64encode(k).decode() for k in (keys.enc_spki, keys.sig_spki)]
    proof = protocol.sign_device_proof(keys, user_id)
    code = (
        "import base64; from keys.models import Device; "
        f"d = Device.objects.create(user_id={user_id}, name='v1', "
        f"enc_spki=base64.b64decode('{spki[0]}'), sig_spki=base64.b64decode('{spki[1]}'), "
        f"enc_kid='{keys.enc_kid}', sig_kid='{keys.sig_kid}', proof='{proof}'); print(d.pk)"
    )
    return int(server.manage("shell", "-c", code).split()[-1])


def v1_keys(keys: protocol.DeviceKeys) -> protocol.DeviceKeys:
    return protocol.DeviceKeys(keys.enc_private, keys.sig_private)


async def test_a_v1_device_upgrades_and_contacts_accept_it(server, device_keys):
    bob = await new_client(server.base_url, "bob", device_keys())
    session = ChatSession(server.base_url)
    user = await session.register("olga", PASSWORD)
    v1 = v1_keys(device_keys())
    device_id = v1_device(server, user["id"], v1)
    # bob knows olga from before her upgrade ("not upgraded": her v1 device is used).
    before = await bob.send_text("olga", "hello olga")
    assert v1.enc_kid in before["envelope"]["keys"]
    olga = ChatClient(session, v1, user_id=user["id"], username="olga", device_id=device_id)
    records = []
    await olga.upgrade("olga pass", save_record=records.append, iterations=100_000)
    assert records and records[0]["v"] == 2 and olga.keys.id_private is not None
    assert keystore.unlock_keystore(records[0], "olga pass").id_kid == olga.keys.id_kid
    bob.directory.forget("olga")
    after = await bob.send_text("olga", "you upgraded")
    notices = [n.kind for n in bob.pop_notices() if isinstance(n, TrustNotice)]
    assert notices == ["identity_upgraded"]
    assert (await olga.open(after)).text == "you upgraded"
    assert (await olga.open(before)).text == "hello olga"


async def test_a_v1_group_gets_its_roster_and_a_v1_device_is_linked(server, device_keys):
    alice = await new_client(server.base_url, "alice", device_keys())
    bob = await new_client(server.base_url, "bob", device_keys())
    code = (
        "from messaging.models import Conversation, Membership; "
        f"c = Conversation.objects.create(kind='group', title='old', owner_id={alice.user_id}); "
        f"[Membership.objects.create(conversation=c, user_id=u) for u in "
        f"({alice.user_id}, {bob.user_id})]; print(c.pk)"
    )
    cid = int(server.manage("shell", "-c", code).split()[-1])
    before = await bob.conversation(cid)  # no roster yet: the server's members, head ""
    assert before["gid"] is None
    # The owner's device makes record 0 when it next opens the group (§8).
    await alice.conversation(cid)
    sent = await bob.send_text(cid, "roster now")
    assert sent["envelope"]["head"] != ""
    changes = [n.text for n in bob.pop_notices() if isinstance(n, RosterChange)]
    assert changes == ["alice created the group “old” with you"]
    assert (await alice.open(sent)).text == "roster now"
    # A v1 device of alice's (she has an identity now) is linked with its own keys.
    old = v1_keys(device_keys())
    old_id = v1_device(server, alice.user_id, old)
    session = ChatSession(server.base_url)
    await session.login("alice", PASSWORD)
    link = await NewDeviceLink.start(session, name="old laptop", keys=old)
    (request,) = await alice.link_requests()
    device = await alice.approve_link(request.id, code=link.code)
    linked = await link.wait(poll=0.05, timeout=30)
    assert device["id"] == old_id == linked.device["id"] and device["cert"]
    record = link.keystore(linked, "old pass", iterations=100_000)
    assert record["v"] == 2 and record["device_id"] == old_id


async def test_listen_orders_and_syncs_and_the_readme_bot(
    server, device_keys, tmp_path, monkeypatch
):
    alice = await new_client(server.base_url, "alice", device_keys())
    bot_session = ChatSession(server.base_url)
    bot_user = await bot_session.register("echobot", "echobot-password-9x!")
    bot_keys, record, _ = await setup_first_device(
        bot_session, name="bot", passphrase="bot passphrase", keys=device_keys()
    )
    key_file = tmp_path / "echobot-key.json"
    key_file.write_text(json.dumps(record))
    assert bot_user["id"] == record["user_id"]
    conversation = await alice.conversation("echobot")
    path = f"/api/conversations/{conversation['id']}/accept/"
    await bot_session.request("POST", path)  # her request accepted: presence flows (§6)

    monkeypatch.setenv("BOT_PASSWORD", "echobot-password-9x!")
    monkeypatch.setenv("BOT_PASSPHRASE", "bot passphrase")
    echo_bot = readme_bot(server.base_url, key_file, tmp_path / "echobot-state.json")
    listening = Recorder(alice)
    watcher = await ChatSocket.open(alice.session, alice.device_id)
    bot = asyncio.create_task(echo_bot())
    try:
        await listening.connected()
        # The bot opens its socket once it has read its conversations: then it is ready.
        await next_frame(watcher, {"type": "presence", "user": "echobot", "online": True})
        for text in ("ping", "pong"):
            await alice.send_text(conversation["id"], text)
        await listening.wait_for(
            lambda e: isinstance(e, IncomingMessage) and e.text == "echo: pong", timeout=60
        )
    finally:
        await watcher.close()
        await listening.stop()
        bot.cancel()
        await asyncio.gather(bot, return_exceptions=True)
    received = [e for e in listening.events if isinstance(e, IncomingMessage)]
    assert texts(received) == ["echo: ping", "echo: pong"]
    assert [m.text for m in received if m.own] == ["ping", "pong"]
    assert [m.seq for m in received] == sorted(m.seq for m in received)
    assert all(m.verified for m in received)
    saved = StateStore(tmp_path / "echobot-state.json", device_id=record["device_id"])
    assert saved.get("counters", conversation["id"]) == 2  # its two echoes
    judged = {row[0]: row[-1] for row in saved.get("ledgers", conversation["id"])}
    assert all(judged[m.id] == "ok" for m in received if m.own)  # ping and pong, persisted
    # The bot's key file once its device is revoked: connect() says so, before any socket.
    with pytest.raises(MessageTooLong):
        await alice.send_text(conversation["id"], "x" * 16_001)
    await bot_session.revoke_device(record["device_id"])
    with pytest.raises(DeviceRevoked) as revoked:
        await connect(
            server.base_url,
            username="echobot",
            password="echobot-password-9x!",
            key_file=key_file,
            passphrase="bot passphrase",
        )
    assert revoked.value.device_id == record["device_id"]


async def test_send_on_socket_acks_reseals_and_retries_rate_limited(
    live_stack, device_keys, caplog
):
    # A socket may send 3 frames at once, then 5 a second: the sends below go beyond it.
    server = live_stack(env={"WS_RATE_BURST": "3", "WS_RATE_PER_SECOND": "5"})
    caplog.set_level(logging.INFO, logger="chatclient.client")
    alice = await new_client(server.base_url, "alice", device_keys())
    bob = await new_client(server.base_url, "bob", device_keys())
    conversation = await alice.conversation("bob")
    async with await ChatSocket.open(alice.session, alice.device_id) as sock:
        ack, _ = await alice.send_on_socket(sock, conversation, protocol.text_message("one"))
        assert ack["type"] == "ack" and ack["seq"] == 1
        await linked_device(bob, device_keys())
        ack, others = await alice.send_on_socket(sock, "bob", protocol.text_message("two"))
        assert ack["seq"] == 2
        assert not [f for f in others if f.get("type") == "error"]  # the stale error was ours
        again, _ = await alice.send_on_socket(
            sock, "bob", protocol.text_message("ignored"), client_msg_id=ack["client_msg_id"]
        )
        assert again["id"] == ack["id"]  # idempotent by client_msg_id
        # A counter the server has seen higher: stale_counter, sealed again.
        alice.state.put("counters", conversation["id"], 0)
        ack, _ = await alice.send_on_socket(sock, "bob", protocol.text_message("three"))
        assert ack["seq"] == 3
        # A burst: refused frames name their client_msg_id and are sent again after a pause.
        burst = [f"burst {i}" for i in range(6)]
        for text in burst:
            await alice.send_on_socket(sock, conversation, protocol.text_message(text), timeout=10)
    assert "rate limited; sending again" in caplog.text
    history, _ = await bob.history(conversation["id"])
    assert [m.text for m in history] == ["one", "two", "three", *burst]  # each once
    assert [m.seq for m in history] == list(range(1, 10))


# --- attachments (§10.2) -------------------------------------------------------------------


def photo_png(width: int = 1200, height: int = 900) -> bytes:
    """A noisy PNG (noise keeps the thumbnail's JPEG from being trivially small)."""
    from PIL import Image

    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


async def test_files_round_trip_thumbnails_and_refusals(server, device_keys, tmp_path):
    alice = await new_client(server.base_url, "alice", device_keys())
    bob = await new_client(server.base_url, "bob", device_keys())
    carol = await new_client(server.base_url, "carol", device_keys())
    small = "tiny \N{CHECK MARK} file\n".encode() * 10
    big = os.urandom(2 * 2**20 + 12345)
    (tmp_path / "big.bin").write_bytes(big)
    seen = []
    sent_small = await alice.send_file("bob", small, name="../notes.txt", caption="read me")
    sent_big = await alice.send_file(
        "bob", tmp_path / "big.bin", progress=lambda *p: seen.append(p)
    )
    assert seen[-1][0] == seen[-1][1] == attachments.blob_size(len(big))
    photo = photo_png()
    sent_photo = await alice.send_file("bob", photo, name="holiday.png")

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    opened = await bob.open(sent_small)
    assert opened.blobs == tuple(sent_small["blobs"]) and len(opened.blobs) == 1
    assert (opened.file["name"], opened.file["mime"], opened.content["text"]) == (
        "notes.txt",
        "text/plain",
        "read me",
    )
    assert f"[file] notes.txt ({len(small)} B, text/plain; id" in message_line(opened)
    path = await bob.download(opened, inbox)
    assert path == inbox / "notes.txt" and path.read_bytes() == small
    again = await bob.download(sent_small, inbox)  # a stored message is opened first
    assert again == inbox / "notes (1).txt" and again.read_bytes() == small
    big_path = await bob.download(sent_big, inbox / "exact.bin")
    assert big_path.read_bytes() == big

    picture = (await bob.open(sent_photo)).file
    assert (picture["mime"], picture["width"], picture["height"]) == ("image/png", 1200, 900)
    thumb = protocol.b64decode(picture["thumb"])
    assert len(thumb) <= attachments.THUMB_MAX_BYTES and thumb.startswith(b"\xff\xd8")
    from PIL import Image

    with Image.open(io.BytesIO(thumb)) as image:
        assert image.format == "JPEG" and max(image.size) <= 320 and image.size[0] > image.size[1]
    assert (await bob.download(sent_photo, inbox)).read_bytes() == photo

    # A blob whose bytes were changed, and a description with a wrong hash: refused, and
    # nothing is left in the directory (no file, no temporary file).
    blob, encryptor = attachments.encrypt_file(small)
    flipped = blob[:10] + bytes([blob[10] ^ 1]) + blob[11:]
    uploaded = [await alice.session.upload_blob([b], len(b)) for b in (flipped, blob)]
    meta = {
        "key": protocol.b64encode(encryptor.key),
        "prefix": protocol.b64encode(encryptor.prefix),
        "size": len(small),
        "sha256": encryptor.sha256,
        "name": "bad.txt",
        "mime": "text/plain",
    }
    bad_chunk = await alice.send(
        "bob",
        attachments.file_payload({**meta, "blob": uploaded[0]["id"]}),
        blobs=[uploaded[0]["id"]],
    )
    bad_hash = await alice.send(
        "bob",
        attachments.file_payload({**meta, "blob": uploaded[1]["id"], "sha256": "0" * 64}),
        blobs=[uploaded[1]["id"]],
    )
    before = sorted(inbox.iterdir())
    for message, code in ((bad_chunk, "bad_chunk"), (bad_hash, "bad_hash")):
        with pytest.raises(attachments.FileRefused) as caught:
            await bob.download(message, inbox)
        assert caught.value.code == code
        with pytest.raises(attachments.FileRefused):
            await bob.download(message, inbox / "chosen.txt")
    assert sorted(inbox.iterdir()) == before

    # carol is no member: the server gives her nothing, and she cannot open the message.
    with pytest.raises(ChatApiError) as caught:
        await carol.session.download_blob(sent_small["blobs"][0], lambda piece: None)
    assert caught.value.code == "not_found"
    with pytest.raises(ChatError):
        await carol.download(sent_small, inbox)
    with pytest.raises(protocol.ProtocolError) as too_big:
        await alice.send_file("bob", tmp_path / "big.bin", caption="x" * 16001)
    assert too_big.value.code == "too_large"
