"""Load with bookkeeping: LOAD_DEVICES simulated devices (default 1,000: 500 users with two
devices each) in 250 direct conversations and 125 groups of four users send
LOAD_MESSAGES each (default 4 in CI, where opening 1,000 sockets alone takes one to two
minutes of this shared 2-core machine; `make adversarial-soak` sends 100) through
two daphne workers, Redis and PostgreSQL -> 0 lost, 0 duplicated, per-sender order kept,
every member device has every seq.

Setup goes through the ORM in one `manage.py shell` (users with an unusable password and
a session each, devices with their proofs, conversations): registering 500 users over
HTTP would spend minutes in Argon2 and is covered elsewhere. Every message goes over the
WebSocket with a real envelope (AES-GCM, RSA-OAEP per device, RSA-PSS signature the
server verifies). Keys come from tests/adversarial/keycache.py.
"""

import asyncio
import base64
import collections
import hashlib
import hmac
import json
import os
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chatclient import protocol
from chatclient.session import ChatSession
from tests.adversarial.agents import Agent, Ledger
from tests.adversarial.figures import Figures
from tests.adversarial.keycache import key_pairs

pytestmark = [pytest.mark.processes, pytest.mark.load, pytest.mark.timeout(3600)]

DEVICES = int(os.environ.get("LOAD_DEVICES", "1000"))
MESSAGES = int(os.environ.get("LOAD_MESSAGES", "4"))
GROUP_USERS = 4
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)

SETUP = r"""
import json, sys
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.backends.db import SessionStore
from accounts.models import User
from keys.models import Device
from messaging.models import Conversation, Membership
plan = json.load(open(PLAN))
users = User.objects.bulk_create(
    [User(username=name, password=make_password(None)) for name in plan["users"]]
)
ids = {u.username: u.pk for u in User.objects.filter(username__in=plan["users"])}
import base64
devices = []
for d in plan["devices"]:
    devices.append(Device(user_id=ids[d["user"]], name=d["name"],
        enc_spki=base64.b64decode(d["enc_spki"]), sig_spki=base64.b64decode(d["sig_spki"]),
        enc_kid=d["enc_kid"], sig_kid=d["sig_kid"], proof="pending"))
Device.objects.bulk_create(devices)
device_ids = dict(Device.objects.values_list("sig_kid", "pk"))
conversations = {}
for c in plan["conversations"]:
    members = [ids[n] for n in c["members"]]
    if c["kind"] == "direct":
        low, high = sorted(members)
        conv = Conversation.objects.create(kind="direct", direct_key=f"{low}:{high}")
    else:
        conv = Conversation.objects.create(kind="group", title=c["name"], owner_id=members[0])
    Membership.objects.bulk_create(Membership(conversation=conv, user_id=u) for u in members)
    conversations[c["name"]] = conv.pk
sessions = {}
for user in User.objects.filter(username__in=plan["users"]):
    s = SessionStore()
    s["_auth_user_id"] = str(user.pk)
    s["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    s["_auth_user_hash"] = user.get_session_auth_hash()
    s.create()
    sessions[user.username] = s.session_key
json.dump({"users": ids, "devices": device_ids, "conversations": conversations, "sessions": sessions}, open(OUT, "w"))
"""


def der(key):
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class FastKeys:
    """A device's keys in `cryptography` form (sealing 10,000+ envelopes quickly)."""

    def __init__(self, enc, sig):
        self.enc, self.sig = enc, sig
        self.enc_spki, self.sig_spki = der(enc), der(sig)
        self.enc_kid, self.sig_kid = (
            protocol.compute_kid(self.enc_spki),
            protocol.compute_kid(self.sig_spki),
        )
        self.enc_public = enc.public_key()


def seal_fast(
    text, conversation_id, sender_id, client_msg_id, keys: FastKeys, recipients, n, head=""
):
    """The v2 envelope of PROTOCOL §2, as protocol.seal_envelope makes it."""
    content_key, iv = os.urandom(32), os.urandom(12)
    aad = protocol.message_aad(conversation_id, sender_id, client_msg_id, keys.sig_kid, n, head)
    plaintext = protocol.encode_plaintext(protocol.text_message(text))
    ct = AESGCM(content_key).encrypt(iv, plaintext, aad.encode())
    kc = hmac.new(content_key, protocol.KEY_COMMITMENT_LABEL, hashlib.sha256).digest()
    b64 = protocol.b64encode
    iv_b64, ct_b64, kc_b64 = b64(iv), b64(ct), b64(kc)
    signature = keys.sig.sign(
        protocol.signed_string(aad, iv_b64, ct_b64, kc_b64), PSS, hashes.SHA256()
    )
    return {
        "v": 2,
        "n": n,
        "head": head,
        "iv": iv_b64,
        "ct": ct_b64,
        "kc": kc_b64,
        "keys": {kid: b64(public.encrypt(content_key, OAEP)) for kid, public in recipients},
        "sig_kid": keys.sig_kid,
        "sig": b64(signature),
    }


def plan_world(devices: int):
    users = [f"u{n:04d}" for n in range(devices // 2)]
    pairs = key_pairs(devices)
    keys = [FastKeys(enc, sig) for enc, sig in pairs]
    device_plan = []
    for n, k in enumerate(keys):
        device_plan.append(
            {
                "user": users[n // 2],
                "name": f"load {n}",
                "enc_spki": base64.b64encode(k.enc_spki).decode(),
                "sig_spki": base64.b64encode(k.sig_spki).decode(),
                "enc_kid": k.enc_kid,
                "sig_kid": k.sig_kid,
            }
        )
    conversations = [
        {"name": f"direct {i}", "kind": "direct", "members": users[i : i + 2]}
        for i in range(0, len(users) - 1, 2)
    ] + [
        {"name": f"group {i}", "kind": "group", "members": users[i : i + GROUP_USERS]}
        for i in range(0, len(users) - GROUP_USERS + 1, GROUP_USERS)
    ]
    return users, keys, {"users": users, "devices": device_plan, "conversations": conversations}


async def test_load_devices_send_through_two_workers(live_stack, tmp_path):
    figures = Figures(f"load: {DEVICES} devices x {MESSAGES} messages, 2 workers")
    users, keys, plan = await asyncio.to_thread(plan_world, DEVICES)
    stack = live_stack(2, db="postgres")  # the default settings, channel capacity included
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    script = SETUP.replace("PLAN", repr(str(tmp_path / "plan.json"))).replace(
        "OUT", repr(str(tmp_path / "out.json"))
    )
    (tmp_path / "setup.py").write_text(script)
    setup_started = time.monotonic()
    await asyncio.to_thread(
        stack.manage,
        "shell",
        "-c",
        f"exec(open({str(tmp_path / 'setup.py')!r}).read())",
        timeout=600,
    )
    made = json.loads((tmp_path / "out.json").read_text())
    setup_seconds = time.monotonic() - setup_started

    urls = stack.base_urls
    sessions = {
        name: ChatSession.from_state(
            {
                "server": urls[0],
                "cookies": [
                    {"name": "sessionid", "value": key, "domain": "127.0.0.1", "path": "/"}
                ],
            }
        )
        for name, key in made["sessions"].items()
    }
    agents = []
    for n, k in enumerate(keys):
        user = users[n // 2]
        agent = Agent(
            f"{user}/{n % 2}",
            made["users"][user],
            made["devices"][k.sig_kid],
            k,
            sessions[user],
            urls,
            worker=n % 2,
        )
        agents.append(agent)
    by_user = {}
    for agent in agents:
        by_user.setdefault(agent.name.split("/")[0], []).append(agent)
    members = {}
    recipients = {}
    for c in plan["conversations"]:
        cid = made["conversations"][c["name"]]
        members[cid] = [a for u in c["members"] for a in by_user[u]]
        recipients[cid] = [(a.keys.enc_kid, a.keys.enc_public) for a in members[cid]]
        for agent in members[cid]:
            agent.conversations.append(cid)

    connecting = asyncio.Semaphore(100)

    async def connect(agent):
        async with connecting:
            await agent.connect()

    started = time.monotonic()
    await asyncio.gather(*(connect(a) for a in agents))
    connect_seconds = time.monotonic() - started
    ledger = Ledger()

    async def run(agent):
        for n in range(MESSAGES):
            cid = agent.conversations[n % len(agent.conversations)]
            msg_id = protocol.new_client_msg_id()
            envelope = await asyncio.to_thread(
                seal_fast,
                f"{agent.name} {n}",
                cid,
                agent.user_id,
                msg_id,
                agent.keys,
                recipients[cid],
                agent.next_n(cid),  # the groups have no roster (made as v1 groups): head ""
            )
            ledger.note(msg_id, cid, agent)
            await agent.send(cid, msg_id, envelope, timeout=180)

    started = time.monotonic()
    await asyncio.gather(*(run(a) for a in agents))
    send_seconds = time.monotonic() - started
    # Every send was acked, so stored: wait for the fan-outs still on their way, woken by
    # each arrival (an agent that dropped, or still misses some after 30 s, syncs below).
    sent_in = collections.Counter(cid for cid, _, _ in ledger.sent.values())
    deadline = time.monotonic() + 30
    for agent in agents:
        await agent.holds(sent_in, timeout=max(0.0, deadline - time.monotonic()))
    for agent in agents:  # a client that saw a gap (or reconnected) syncs
        if agent.connection is None:
            agent.reconnects += 1
            await agent.connect()
        elif any(agent.cursor(c) < max(agent.received.get(c, {0: 0})) for c in agent.conversations):
            await agent.sync()
    await ledger.check(figures, members)
    live = sum(a.frames_received for a in agents)
    figures.cases = len(ledger.sent)
    figures.notes = (
        f"setup {setup_seconds:.0f} s, {DEVICES} sockets opened in {connect_seconds:.0f} s, "
        f"sends {send_seconds:.0f} s ({len(ledger.sent) / max(send_seconds, 0.001):.0f} msg/s, "
        f"{figures.delivered / max(send_seconds, 0.001):.0f} deliveries/s); "
        f"{len(members)} conversations; reconnects {sum(a.reconnects for a in agents)}, "
        f"resends {sum(a.resends for a in agents)}; message frames {live}, first seen live "
        f"{sum(a.new_live for a in agents)}, first seen by sync {sum(a.new_by_sync for a in agents)}"
    )
    for agent in agents:
        for error in agent.errors[:2]:
            figures.fail(f"{agent.name}: {error}")
    await asyncio.gather(*(a.close() for a in agents), return_exceptions=True)
    figures.assert_clean()
