"""Fuzzing (hypothesis): generated WebSocket frames and HTTP bodies - wrong types, huge
numbers, deep nesting, invalid base64 and UTF-8, oversize, missing, extra and duplicated
keys - against the real ASGI app and database. Every answer is a PROTOCOL error code (or
the normal answer when the mutation left a valid request), no 5xx, no `internal_error`,
no socket closed, and no row stored for a refused request.

Counts: FUZZ_WS_FRAMES (default 6200) and FUZZ_HTTP_BODIES (default 1800) in process on
SQLite; test_fuzz_live.py replays a share of them against daphne on PostgreSQL.
"""

import asyncio
import json
import os
import urllib.parse
import uuid

import pytest
from asgiref.sync import sync_to_async
from hypothesis import strategies as st

from chatclient import protocol, roster
from keys.models import Device
from messaging.models import Message, RosterRecord
from tests.adversarial import fuzzing
from tests.adversarial.figures import Figures
from tests.inprocess import ApiClient, create_group, device_body, recipient_keys, seal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(900)]

WS_FRAMES = int(os.environ.get("FUZZ_WS_FRAMES", "6200"))
HTTP_BODIES = int(os.environ.get("FUZZ_HTTP_BODIES", "1800"))
POOL = 24
WS_ERROR_CODES = {  # §5's list, and not_found for an unknown conversation (docs/protocol.md)
    "not_found",
    "bad_request",
    "unknown_type",
    "not_member",
    "stale_devices",
    "stale_roster",
    "stale_counter",
    "bad_signature",
    "too_large",
}
SUCCESS = {"send": {"ack"}, "sync": {"synced"}, "read": set(), "typing": set(), "ping": set()}
ENVELOPE_FIELDS = ["v", "n", "head", "iv", "ct", "kc", "keys", "sig_kid", "sig"]
RECORD_FIELDS = ["n", "prev", "op", "subjects", "by", "title", "sig_kid", "sig", "hash"]
FRAME_FIELDS = {
    "send": (["type", "conversation", "client_msg_id", "envelope"], {"envelope": ENVELOPE_FIELDS}),
    "sync": (["type", "cursors"], {"cursors": ["1", "0", "x"]}),
    "typing": (["type", "conversation"], {}),
    "read": (["type", "conversation", "up_to"], {}),
    "ping": (["type"], {}),
}


class SealingPool:
    """POOL client_msg_ids; item i is id i sealed afresh (by `seal_one(msg_id, text)`) with
    the sender's next n, so a valid send is stored whatever order the fuzz picks ids in,
    and an id stored before is a replay."""

    def __init__(self, seal_one):
        self.ids = [protocol.new_client_msg_id() for _ in range(POOL)]
        self.seal_one = seal_one

    def __getitem__(self, index: int) -> tuple[str, dict]:
        msg_id = self.ids[index]
        return msg_id, self.seal_one(msg_id, f"fuzz {index}")


def roster_bodies(keys, user_id: int, member_id: int, group: dict) -> dict:
    """Valid bodies as they stand: a new group (once 201, then 200: the same again) and a
    title record for `group`'s head (once 201, then 200)."""
    gid = str(uuid.uuid4())
    head = group["roster_head"]
    common = {"prev": roster.GENESIS, "by": user_id}
    create = roster.make_record(
        keys, gid=gid, n=0, op="create", subjects=[user_id, member_id], title="fuzz", **common
    )
    title = roster.make_record(
        keys,
        gid=group["gid"],
        n=head["n"] + 1,
        prev=head["hash"],
        op="title",
        subjects=[],
        by=user_id,
        title="fuzzed",
    )
    return {"group": {"gid": gid, "title": "fuzz", "roster": create}, "record": {"record": title}}


def ws_examples(count: int) -> list:
    kinds = [
        st.tuples(st.just(kind), fuzzing.mutations(fields, nested), st.integers(0, POOL - 1))
        for kind, (fields, nested) in FRAME_FIELDS.items()
    ]
    weighted = st.one_of(kinds[0], kinds[0], kinds[0], *kinds)
    return fuzzing.collect(weighted, count, seed=11)


def base_frame(kind: str, direct: dict, pool: list, index: int) -> dict:
    cid = direct["id"]
    if kind == "send":
        msg_id, envelope = pool[index]
        return {"type": "send", "conversation": cid, "client_msg_id": msg_id, "envelope": envelope}
    if kind == "sync":
        return {"type": "sync", "cursors": {str(cid): 0}}
    if kind == "read":
        return {"type": "read", "conversation": cid, "up_to": 1}
    if kind == "typing":
        return {"type": "typing", "conversation": cid}
    return {"type": "ping"}


async def replies_until_marker(ws, n, timeout=20.0):
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            output = await ws.output_queue.get()
            if output["type"] == "websocket.close":
                frames.append({"type": "closed", "code": output.get("code")})
                return frames
            frame = json.loads(output["text"])
            if fuzzing.is_marker(frame, n):
                return frames
            frames.append(frame)


def stored_is_valid(message: Message, alice) -> bool:
    """A stored envelope passes every check a recipient makes of its shape and signature."""
    try:
        return protocol.verify_envelope_signature(
            message.envelope,
            conversation_id=message.conversation_id,
            sender_id=message.sender_id,
            client_msg_id=message.client_msg_id,
            sig_public=alice.keys.sig_public,
        )
    except protocol.ProtocolError:
        return False


async def test_fuzz_websocket_frames(trio, settings):
    settings.WS_RATE_PER_SECOND = 10**9
    settings.WS_RATE_BURST = 10**9
    alice, bob, carol, direct = trio
    figures = Figures(f"fuzz: WebSocket frames (in process, {WS_FRAMES})")
    examples = ws_examples(WS_FRAMES)
    recipients = await sync_to_async(recipient_keys)(alice, direct)
    pool = SealingPool(
        lambda msg_id, text: seal(alice, direct, text, msg_id, recipients=recipients)[1]
    )
    ws = alice.socket()
    assert (await ws.connect(timeout=10))[0]
    acked: set[str] = set()
    codes: dict[str, int] = {}
    for n, (kind, mutation, index) in enumerate(examples):
        text = fuzzing.apply(base_frame(kind, direct, pool, index), mutation)
        key = "bytes" if isinstance(text, bytes) else "text"
        await ws.send_input({"type": "websocket.receive", key: text})
        await ws.send_to(text_data=fuzzing.marker(n))
        where = f"{kind} {mutation[0]} {mutation[1]} {str(mutation[2])[:60]!r}"
        try:
            replies = await replies_until_marker(ws, n)
        except TimeoutError:
            figures.fail(f"{where}: no answer")
            break
        figures.cases += 1
        errors = [r for r in replies if r["type"] == "error"]
        closed = [r for r in replies if r["type"] == "closed"]
        if closed:
            figures.fail(f"{where}: socket closed {closed}")
            break
        for error in errors:
            codes[error["code"]] = codes.get(error["code"], 0) + 1
            if error["code"] not in WS_ERROR_CODES:
                figures.fail(f"{where}: error code {error['code']} {error.get('detail')}")
        # An ack: the mutation left a valid frame (an ignored extra field, another valid
        # number); the message must then be stored and valid.
        for reply in replies:
            if reply["type"] == "ack":
                acked.add(reply["client_msg_id"])
                if errors:
                    figures.fail(f"{where}: acked and refused {replies}")
    stored = [m async for m in Message.objects.all()]
    bad = [m.client_msg_id for m in stored if not await sync_to_async(stored_is_valid)(m, alice)]
    figures.check(not bad, f"stored envelopes that do not verify: {bad}")
    figures.check(
        {m.client_msg_id for m in stored} == acked,
        f"stored {len(stored)} rows but acked {len(acked)}",
    )
    figures.stored = len(stored)
    listed = ", ".join(f"{k} {v}" for k, v in sorted(codes.items()))
    figures.notes = f"acked (still-valid mutations): {len(acked)}; error codes: {listed}"
    await ws.disconnect()
    figures.assert_clean()


# --- HTTP ---------------------------------------------------------------------------------

HTTP_BODY_FIELDS = {
    "send": (["client_msg_id", "envelope"], {"envelope": ENVELOPE_FIELDS}),
    "device": (["name", "enc_spki", "sig_spki", "proof", "cert"], {}),
    "conversation": (["members", "title"], {}),
    "group": (["gid", "title", "roster"], {"roster": RECORD_FIELDS}),
    "record": (["record", "gid"], {"record": RECORD_FIELDS}),
    "login": (["username", "password"], {}),
    "register": (["username", "password"], {}),
}
path_text = st.one_of(
    st.text(max_size=30),
    fuzzing.weird_text,
    fuzzing.huge_ints.map(str),
    st.integers().map(str),
)


def http_examples(count: int) -> list:
    bodies = [
        st.tuples(st.just(kind), fuzzing.mutations(fields, nested), st.integers(0, POOL - 1))
        for kind, (fields, nested) in HTTP_BODY_FIELDS.items()
    ]
    paths = st.tuples(
        st.sampled_from(["history", "user_devices", "key", "revoke", "roster", "search"]),
        path_text,
        path_text,
    )
    return fuzzing.collect(st.one_of(*bodies, bodies[0], bodies[0], paths), count, seed=13)


def http_request(example, alice, direct, group, pool, bodies):
    """(client: 'alice'|'anon', method, path, body text or None)."""
    kind = example[0]
    cid, gid = direct["id"], group["id"]
    q = urllib.parse.quote
    if len(example) == 3 and isinstance(example[1], str):
        _, a, b = example
        return {
            "history": (
                "alice",
                "GET",
                f"/api/conversations/{cid}/messages/?limit={q(a)}&before_seq={q(b)}",
                None,
            ),
            "user_devices": (
                "alice",
                "GET",
                f"/api/users/{q(a, safe='')}/devices/?include_revoked={q(b)}",
                None,
            ),
            "key": ("alice", "GET", f"/api/keys/{q(a, safe='')}/", None),
            "revoke": ("alice", "DELETE", f"/api/devices/{q(a, safe='')}/", None),
            "roster": (
                "alice",
                "GET",
                f"/api/conversations/{q(b, safe='')}/roster/?after={q(a)}",
                None,
            ),
            "search": ("alice", "GET", f"/api/users/?q={q(a)}", None),
        }[kind]
    _, mutation, index = example
    if kind == "send":
        msg_id, envelope = pool[index]
        base = {"client_msg_id": msg_id, "envelope": envelope}
        path, who = f"/api/conversations/{cid}/messages/", "alice"
    elif kind == "device":  # her own registered keys, certified: refused, never stored
        base, path, who = device_body(alice.user_id, alice.keys), "/api/devices/", "alice"
    elif kind == "conversation":
        base, path, who = {"members": ["bob"], "title": None}, "/api/conversations/", "alice"
    elif kind == "group":
        base, path, who = bodies["group"], "/api/conversations/", "alice"
    elif kind == "record":
        base, path, who = bodies["record"], f"/api/conversations/{gid}/roster/", "alice"
    elif kind == "login":
        base, path, who = {"username": "alice", "password": "wrong"}, "/api/session/", "anon"
    else:
        base = {"username": "alice", "password": "correct horse battery staple"}
        path, who = "/api/users/", "anon"
    return who, "POST", path, fuzzing.apply(base, mutation)


def test_fuzz_http_bodies(trio, settings):
    settings.AXES_ENABLED = True
    # 1,800 requests from one address and three users: the request limits (but the blob
    # upload rate, as before them) would answer most registrations, logins, device and
    # link requests and sends before their validators see them; test_rate_limits.py and
    # test_hardening.py cover the limits themselves.
    for limit in (
        "REGISTER_RATE",
        "LOGIN_RATE",
        "DEVICE_REGISTER_RATE",
        "LINK_REQUEST_RATE",
        "REST_SEND_RATE",
    ):
        setattr(settings, limit, "")
    alice, bob, carol, direct = trio
    group = create_group(alice, [bob])
    figures = Figures(f"fuzz: HTTP bodies, paths, queries (in process, {HTTP_BODIES})")
    recipients = recipient_keys(alice, direct)
    pool = SealingPool(
        lambda msg_id, text: seal(alice, direct, text, msg_id, recipients=recipients)[1]
    )
    bodies = roster_bodies(alice.keys, alice.user_id, carol.user_id, group)
    examples = http_examples(HTTP_BODIES)
    created_messages: set[str] = set()
    applied: set[int] = set()
    registered = 0
    devices_before = Device.objects.count()
    codes: dict[str, int] = {}
    anon = ApiClient()
    for example in examples:
        who, method, path, body = http_request(example, alice, direct, group, pool, bodies)
        api = alice.api if who == "alice" else anon
        raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
        try:
            response = (
                api.call(method, path, raw=raw) if raw is not None else api.call(method, path)
            )
        except Exception as exc:  # the test client re-raises server exceptions
            figures.fail(f"{method} {path[:80]} {str(raw)[:80]}: raised {exc!r}"[:300])
            figures.cases += 1
            continue
        where = f"{method} {path[:80]} {str(raw)[:100]!r}"
        figures.cases += 1
        status = response.status_code
        if status >= 500:
            figures.fail(f"{where}: {status}")
        elif status >= 400:
            code, problem = fuzzing.error_code_of_body(status, response.content)
            codes[code] = codes.get(code, 0) + 1
            if problem:
                figures.fail(f"{where}: {problem}")
        elif path.endswith("/messages/") and method == "POST" and status == 201:
            created_messages.add(response.json_body["message"]["client_msg_id"])
        elif path.endswith("/roster/") and method == "POST" and status == 201:
            applied.add(response.json_body["conversation"]["roster_head"]["n"])
        elif path == "/api/users/" and status == 201:
            registered += 1
            anon = ApiClient()
        elif path == "/api/session/" and status == 200:
            anon = ApiClient()
    stored = {m.client_msg_id for m in Message.objects.all()}
    figures.check(
        stored == created_messages, f"stored {len(stored)} vs 201s {len(created_messages)}"
    )
    bad = [m.client_msg_id for m in Message.objects.all() if not stored_is_valid(m, alice)]
    figures.check(not bad, f"stored envelopes that do not verify: {bad}")
    figures.check(
        Device.objects.count() == devices_before,
        f"devices {devices_before} -> {Device.objects.count()}",
    )
    figures.check(
        Device.objects.active().filter(pk=alice.device_id).exists(), "alice's device revoked"
    )
    records = RosterRecord.objects.filter(conversation_id=group["id"]).count()
    figures.check(records == 1 + (1 in applied), f"{records} roster records, applied {applied}")
    figures.stored = len(stored)
    listed = ", ".join(f"{k} {v}" for k, v in sorted(codes.items(), key=str))
    figures.notes = (
        f"201 sends: {len(created_messages)}, registrations: {registered}; error codes: {listed}"
    )
    figures.assert_clean()
