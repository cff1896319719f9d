"""Authorization matrix: every HTTP endpoint and WebSocket frame x {anonymous, logged-in
non-member, another user, a revoked device, a deactivated user, staff} -> the right status
or close code, and no data of others in any answer. CSRF on every unsafe method; a foreign
Origin refused at the WebSocket handshake.

Resources under test belong to alice (owner) and bob: a direct conversation and a group,
each holding one message; alice's identity, device and a pending link request of hers
(the identity, certificate, link-request and history-key endpoints of §7). The actors:
  anonymous    no session
  outsider     carol, logged in with a device, in neither conversation
  other_user   bob, a member, acting on alice's own things (her device, her group's owner rights)
  revoked      eve, a group member whose only device is revoked
  deactivated  frank, a group member whose account was deactivated (session cookie kept)
  staff        sam, is_staff, in neither conversation (staff get no extra API rights)
"""

import asyncio
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.utils import timezone

from accounts.actions import deactivate_user
from accounts.models import User
from chatclient import protocol
from keys.actions import revoke_device
from keys.models import Device, Identity, LinkRequest
from messaging.models import Block, HistoryKey, Membership, Message, RosterRecord
from tests.adversarial.figures import Figures
from tests.inprocess import ApiClient, create_group, roster_record, seal

pytestmark = pytest.mark.django_db(transaction=True)

ACTORS = ["anonymous", "outsider", "other_user", "revoked", "deactivated", "staff"]


def world(make_user):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    eve, frank, sam = make_user("eve"), make_user("frank"), make_user("sam")
    User.objects.filter(username="sam").update(is_staff=True)
    direct = alice.api.post("/api/conversations/", {"members": ["bob"]}).json_body["conversation"]
    group = create_group(alice, [bob, eve, frank], "secret group")
    secrets = []
    for conversation in (direct, group):
        msg_id, envelope = seal(alice, conversation, "hello")
        stored = alice.api.post(
            f"/api/conversations/{conversation['id']}/messages/",
            {"client_msg_id": msg_id, "envelope": envelope},
        )
        assert stored.status_code == 201, stored.content
        secrets += [envelope["ct"], envelope["sig"], msg_id]
    revoke_device(Device.objects.get(pk=eve.device_id))
    deactivate_user(User.objects.get(username="frank"))
    anonymous = ApiClient()
    actors = {
        "anonymous": (anonymous, None),
        "outsider": (carol.api, carol),
        "other_user": (bob.api, bob),
        "revoked": (eve.api, eve),
        "deactivated": (frank.api, frank),
        "staff": (sam.api, sam),
    }
    # Strings only alice, bob (and the group's members) may see: message ciphertexts and
    # ids, the group's title and gid, the roster's signatures.
    record_0 = group["roster_head"]["hash"]
    secrets += ["secret group", group["gid"], record_0]
    return alice, bob, direct, group, actors, secrets


def expected_http(alice, bob, direct, group, actor_name, actor):
    """(label, method, path, body, expected status, expected code or None)."""
    d, g = direct["id"], group["id"]
    anon = actor_name in ("anonymous", "deactivated")
    # revoked: eve is a group member (her account works; only her device is revoked)
    rows = [
        ("session get", "GET", "/api/session/", None, 200, None),
        ("user search", "GET", "/api/users/?q=", None, 401 if anon else 200, None),
        ("own devices", "GET", "/api/devices/", None, 401 if anon else 200, None),
        (
            "register device (empty body)",
            "POST",
            "/api/devices/",
            {},
            401 if anon else 400,
            None,
        ),
        (
            "revoke alice's device",
            "DELETE",
            f"/api/devices/{alice.device_id}/",
            None,
            401 if anon else 404,
            "not_authenticated" if anon else "not_found",
        ),
        ("alice's devices", "GET", "/api/users/alice/devices/", None, 401 if anon else 200, None),
        (
            "key lookup",
            "GET",
            f"/api/keys/{alice.keys.sig_kid}/",
            None,
            401 if anon else 200,
            None,
        ),
        ("conversation list", "GET", "/api/conversations/", None, 401 if anon else 200, None),
        (
            "create conversation (empty)",
            "POST",
            "/api/conversations/",
            {"members": []},
            401 if anon else 400,
            None,
        ),
    ]
    for label, cid, member in (("direct", d, False), ("group", g, True)):
        is_member = actor_name == "other_user" or (member and actor_name == "revoked")
        if anon:
            status, code = 401, "not_authenticated"
        elif not is_member:
            status, code = 403, "not_member"
        else:
            status, code = 200, None
        rows.append(
            (f"{label} history", "GET", f"/api/conversations/{cid}/messages/", None, status, code)
        )
        rows.append(
            (f"{label} roster", "GET", f"/api/conversations/{cid}/roster/", None, status, code)
        )
        # a roster record: alice's (only she may post it), for the group's head
        if anon:
            post = (401, "not_authenticated")
        elif not is_member:
            post = (403, "not_member")
        elif label == "direct":
            post = (400, "bad_request")
        else:
            post = (403, "forbidden")
        carol_id = User.objects.get(username="carol").pk
        record = roster_record(alice, group, "add", [carol_id], head=group["roster_head"])
        rows.append(
            (
                f"{label} roster record by alice",
                "POST",
                f"/api/conversations/{cid}/roster/",
                {"record": record},
                *post,
            )
        )
        # message requests (§6): the direct one is a request for bob until he accepts
        accept = (200, None) if status == 200 else (status, code)
        rows.append((f"{label} accept", "POST", f"/api/conversations/{cid}/accept/", None, *accept))
        decline = (400, "bad_request") if status == 200 else (status, code)
        rows.append(  # accepted just above (or never a request): nothing to decline
            (f"{label} decline", "POST", f"/api/conversations/{cid}/decline/", None, *decline)
        )
        rows.append(  # the v1 member endpoints are gone, for everyone
            (
                f"{label} old add member",
                "POST",
                f"/api/conversations/{cid}/members/",
                {"username": "carol"},
                404,
                "not_found",
            )
        )
    for method in ("POST", "DELETE"):  # block alice, then lift it; nobody else is touched
        rows.append(
            (
                f"block alice ({method})",
                method,
                "/api/users/alice/block/",
                None,
                401 if anon else 204,
                "not_authenticated" if anon else None,
            )
        )
    rows.append(
        (
            "block unknown user",
            "POST",
            "/api/users/nobody-here/block/",
            None,
            401 if anon else 404,
            "not_authenticated" if anon else "not_found",
        )
    )
    rows.append(
        (
            "unknown conversation history",
            "GET",
            "/api/conversations/999999/messages/",
            None,
            401 if anon else 404,
            "not_authenticated" if anon else "not_found",
        )
    )
    return rows


def alice_link_request(alice) -> LinkRequest:
    """A pending link request of alice's (a new device of hers asking to join)."""
    return LinkRequest.objects.create(
        user_id=alice.user_id,
        name="alice's new phone",
        enc_spki=b"enc",
        sig_spki=b"sig",
        enc_kid="e" * 64,
        sig_kid="f" * 64,
        proof="AAAA",
        expires=timezone.now() + timedelta(minutes=10),
    )


def identity_rows(alice, actor_name, link_request_id):
    """Identity, certificate, link-request and history-key endpoints (§7), acting on
    alice's things: (label, method, path, body, expected status, expected code or None)."""
    anon = actor_name in ("anonymous", "deactivated")
    no_certified_device = actor_name == "revoked"  # eve: her only device is revoked

    def refused(status, code):
        return (401, "not_authenticated") if anon else (status, code)

    request = f"/api/link-requests/{link_request_id}/"
    alice_identity = {
        "id_spki": protocol.b64encode(protocol.spki_of(alice.identity)),
        "proof": "AAAA",
    }
    wraps = {"wraps": [{"message": 1, "ek": "AAAA"}]}
    acting = (403, "forbidden") if no_certified_device else (404, "not_found")
    return [
        ("alice's identity", "GET", "/api/users/alice/identity/", None, *refused(200, None)),
        (
            "claim alice's identity",
            "PUT",
            "/api/identity/",
            alice_identity,
            *refused(409, "duplicate_key"),
        ),
        (
            "certify alice's device",
            "POST",
            f"/api/devices/{alice.device_id}/cert/",
            {"cert": "AAAA"},
            *refused(404, "not_found"),
        ),
        ("my link requests", "GET", "/api/link-requests/", None, *refused(200, None)),
        ("new link request (empty)", "POST", "/api/link-requests/", {}, *refused(400, None)),
        ("alice's link request", "GET", request, None, *refused(404, "not_found")),
        (
            "approve alice's link request",
            "POST",
            request + "approve/",
            {"cert": "AAAA", "id_wrap": {}},
            *refused(*acting),
        ),
        ("deny alice's link request", "DELETE", request, None, *refused(404, "not_found")),
        (
            "history keys for alice's device",
            "POST",
            f"/api/devices/{alice.device_id}/history-keys/",
            wraps,
            *refused(*acting),
        ),
    ]


def leaks(body: bytes, secrets: list[str]) -> list[str]:
    text = body.decode("utf-8", "replace")
    return [s for s in secrets if s in text]


def test_http_matrix(make_user):
    figures = Figures("authz: HTTP endpoints x actors")
    alice, bob, direct, group, actors, secrets = world(make_user)
    link_request = alice_link_request(alice)
    for actor_name, (api, user) in actors.items():
        member_secrets = (
            secrets if actor_name in ("anonymous", "outsider", "staff", "deactivated") else []
        )
        member_secrets = [*member_secrets, link_request.enc_kid, link_request.name]
        rows = expected_http(alice, bob, direct, group, actor_name, user)
        rows += identity_rows(alice, actor_name, link_request.pk)
        for label, method, path, body, status, code in rows:
            response = api.call(method, path, body)
            where = f"{actor_name}: {label} {method} {path}"
            figures.check(
                response.status_code == status,
                f"{where}: {response.status_code} (want {status}) {response.content[:200]!r}",
            )
            if code is not None and response.status_code >= 400:
                got = (response.json_body or {}).get("error", {}).get("code")
                figures.check(got == code, f"{where}: code {got} (want {code})")
            leaked = leaks(response.content, member_secrets)
            figures.check(not leaked, f"{where}: leaks {leaked}")
            if response.status_code < 300 and response.json_body is not None:
                check_views(figures, where, actor_name, user, response.json_body, direct, group)
    # Nothing above changed alice's things.
    figures.check(
        Device.objects.active().filter(pk=alice.device_id).exists(), "alice's device was revoked"
    )
    figures.check(Message.objects.count() == 2, "a message was stored or lost")
    figures.check(RosterRecord.objects.count() == 1, "a roster record was stored")
    link_request.refresh_from_db()
    figures.check(link_request.status == LinkRequest.PENDING, "alice's link request changed")
    figures.check(not HistoryKey.objects.exists(), "a history key was stored")
    figures.check(not Block.objects.exists(), "a block was left standing")
    figures.check(
        Identity.objects.filter(id_kid=alice.keys.id_kid, user_id=alice.user_id).exists(),
        "alice's identity moved",
    )
    figures.assert_clean()


def check_views(figures, where, actor_name, user, body, direct, group):
    """Lists only show what PROTOCOL allows this actor to see."""
    if "conversations" in body:
        ids = {c["id"] for c in body["conversations"]}
        allowed = {"other_user": {direct["id"], group["id"]}, "revoked": {group["id"]}}.get(
            actor_name, set()
        )
        figures.check(ids <= allowed | (ids - {direct["id"], group["id"]}), f"{where}: {ids}")
        figures.check(not (ids & ({direct["id"], group["id"]} - allowed)), f"{where}: sees {ids}")
    if "devices" in body and "user" not in body:  # own device list
        owners = set(
            Device.objects.filter(pk__in=[d["id"] for d in body["devices"]]).values_list(
                "user__username", flat=True
            )
        )
        figures.check(owners <= {user.username}, f"{where}: lists devices of {owners}")
    if "link_requests" in body:
        owners = set(
            LinkRequest.objects.filter(pk__in=[r["id"] for r in body["link_requests"]]).values_list(
                "user__username", flat=True
            )
        )
        figures.check(owners <= {user.username}, f"{where}: lists link requests of {owners}")
    if "users" in body:
        names = {u["username"] for u in body["users"]}
        figures.check("frank" not in names, f"{where}: lists a deactivated user")
    if "user" in body and actor_name == "deactivated" and body.get("user") is not None:
        figures.fail(f"{where}: deactivated session still names {body['user']}")


UNSAFE = [
    ("POST", "/api/session/", {"username": "alice", "password": "x"}),
    ("DELETE", "/api/session/", None),
    ("POST", "/api/users/", {"username": "mallory", "password": "correct horse battery"}),
    ("POST", "/api/devices/", {}),
    ("DELETE", "/api/devices/{device}/", None),
    ("POST", "/api/conversations/", {"members": ["bob"]}),
    ("POST", "/api/conversations/{group}/roster/", {"record": {}}),
    ("POST", "/api/conversations/{direct}/messages/", {"client_msg_id": "x", "envelope": {}}),
    ("PUT", "/api/identity/", {"id_spki": "AAAA", "proof": "AAAA"}),
    ("POST", "/api/devices/{device}/cert/", {"cert": "AAAA"}),
    ("POST", "/api/link-requests/", {}),
    ("POST", "/api/link-requests/{link_request}/approve/", {"cert": "AAAA", "id_wrap": {}}),
    ("DELETE", "/api/link-requests/{link_request}/", None),
    ("POST", "/api/devices/{device}/history-keys/", {"wraps": []}),
    ("POST", "/api/conversations/{direct}/accept/", None),
    ("POST", "/api/conversations/{direct}/decline/", None),
    ("POST", "/api/users/bob/block/", None),
    ("DELETE", "/api/users/bob/block/", None),
]


def test_csrf_on_every_unsafe_method(make_user):
    """Without X-CSRFToken (logged in or not), with a wrong one, or from a foreign Origin
    over HTTPS-less loopback: 403 `forbidden` and nothing changes."""
    figures = Figures("authz: CSRF on unsafe methods")
    alice, bob, direct, group, actors, _ = world(make_user)
    link_request = alice_link_request(alice)
    values = {
        "device": alice.device_id,
        "group": group["id"],
        "direct": direct["id"],
        "link_request": link_request.pk,
    }
    before = (
        Message.objects.count(),
        User.objects.count(),
        Device.objects.count(),
        Block.objects.count(),
        Membership.objects.filter(request=True, declined_seq__isnull=True).count(),
    )
    for logged_in in (True, False):
        for variant in ("missing", "wrong"):
            for method, path, body in UNSAFE:
                http = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
                if logged_in:
                    http.cookies = alice.api.http.cookies
                http.get("/api/session/")
                headers = {"HTTP_X_CSRFTOKEN": "x" * 32} if variant == "wrong" else {}
                response = getattr(http, method.lower())(
                    path.format(**values),
                    data=json.dumps(body) if body is not None else None,
                    content_type="application/json",
                    **headers,
                )
                where = f"{'alice' if logged_in else 'anonymous'} {variant} token {method} {path}"
                ok = response.status_code == 403
                if ok:
                    ok = response.json()["error"]["code"] == "forbidden"
                figures.check(ok, f"{where}: {response.status_code} {response.content[:120]!r}")
    after = (
        Message.objects.count(),
        User.objects.count(),
        Device.objects.count(),
        Block.objects.count(),
        Membership.objects.filter(request=True, declined_seq__isnull=True).count(),
    )
    figures.check(before == after, f"rows changed: {before} -> {after}")
    figures.check(
        Device.objects.active().filter(pk=alice.device_id).exists(), "alice's device revoked"
    )
    link_request.refresh_from_db()
    figures.check(link_request.status == LinkRequest.PENDING, "alice's link request changed")
    figures.assert_clean()


# --- WebSocket ----------------------------------------------------------------------------


async def close_code(ws, timeout=2.0):
    """The close code the server sends (None if the socket stays open)."""
    try:
        while True:
            output = await asyncio.wait_for(ws.output_queue.get(), timeout)
            if output["type"] == "websocket.close":
                return output.get("code")
    except TimeoutError:
        return None


async def until(ws, kinds, timeout=5.0):
    """Frames up to and including the first of one of `kinds`, then any that follow at once."""
    frames = []
    try:
        async with asyncio.timeout(timeout):
            while not frames or frames[-1]["type"] not in kinds:
                frames += await drain(ws, timeout=timeout, one=True)
    except TimeoutError:
        return frames
    return frames + await drain(ws, timeout=0.1)


async def drain(ws, timeout=0.3, one=False):
    """Frames that arrive until `timeout` passes without one (the app keeps running:
    the communicator's own receive timeout would cancel it)."""
    frames = []
    while True:
        try:
            output = await asyncio.wait_for(ws.output_queue.get(), timeout)
        except TimeoutError:
            return frames
        if output["type"] == "websocket.send":
            frames.append(json.loads(output["text"]))
        elif output["type"] == "websocket.close":
            frames.append({"type": "closed", "code": output.get("code")})
        if one:
            return frames


async def test_websocket_matrix(make_user):
    figures = Figures("authz: WebSocket connect and frames x actors")
    alice, bob, direct, group, actors, secrets = await sync_to_async(world)(make_user)
    carol, eve, frank, sam = (actors[n][1] for n in ("outsider", "revoked", "deactivated", "staff"))

    # Handshakes: who may open a socket, and as which device.
    anon = alice.socket()
    anon.scope["headers"] = [h for h in anon.scope["headers"] if h[0] != b"cookie"]
    cases = [
        ("anonymous", anon, 4401),
        ("outsider with alice's device", carol.socket(alice.device_id), 4403),
        ("other_user with alice's device", bob.socket(alice.device_id), 4403),
        ("revoked device", eve.socket(), 4403),
        ("deactivated user", frank.socket(), 4403),
        ("staff with alice's device", sam.socket(alice.device_id), 4403),
        ("outsider, own device", carol.socket(), None),
        ("staff, own device", sam.socket(), None),
    ]
    for label, ws, want in cases:
        accepted, _ = await ws.connect(timeout=10)
        got = await close_code(ws, timeout=1.0) if accepted else "refused"
        figures.check(got == want, f"{label}: close {got} (want {want})")
        await ws.disconnect()
    for label, origin in (("foreign origin", b"https://evil.example"), ("null origin", b"null")):
        ws = alice.socket(origin=origin)
        accepted, _ = await ws.connect(timeout=10)
        figures.check(not accepted, f"{label}: handshake accepted")
        await ws.disconnect()

    # Frames from sockets that are open but not members: outsider and staff.
    alice_ws = alice.socket()
    assert (await alice_ws.connect(timeout=10))[0]
    for name, user in (("outsider", carol), ("staff", sam)):
        ws = user.socket()
        await ws.connect(timeout=10)
        await drain(ws)
        for conversation in (direct, group):
            cid = conversation["id"]
            msg_id, envelope = await sync_to_async(seal)(user, conversation, "let me in")
            frames = [
                (
                    {
                        "type": "send",
                        "conversation": cid,
                        "client_msg_id": msg_id,
                        "envelope": envelope,
                    },
                    "not_member",
                ),
                ({"type": "typing", "conversation": cid}, "not_member"),
                ({"type": "read", "conversation": cid, "up_to": 1}, "not_member"),
                ({"type": "sync", "cursors": {str(cid): 0}}, "not_member"),
            ]
            for frame, code in frames:
                await ws.send_json_to(frame)
                replies = await until(ws, {"synced"} if frame["type"] == "sync" else {"error"})
                errors = [r for r in replies if r["type"] == "error"]
                where = f"{name}: {frame['type']} to conversation {cid}"
                figures.check(len(errors) == 1 and errors[0]["code"] == code, f"{where}: {replies}")
                figures.check(
                    not any(r["type"] == "message" for r in replies), f"{where}: got a message"
                )
                if frame["type"] == "sync":
                    synced = [r for r in replies if r["type"] == "synced"]
                    figures.check(bool(synced) and synced[0]["cursors"] == {}, f"{where}: {synced}")
                leaked = leaks(json.dumps(replies).encode(), secrets)
                figures.check(not leaked, f"{where}: leaks {leaked}")
        # Alice's traffic never reaches the outsider's socket.
        msg_id, envelope = await sync_to_async(seal)(alice, direct, "private")
        await alice_ws.send_json_to(
            {
                "type": "send",
                "conversation": direct["id"],
                "client_msg_id": msg_id,
                "envelope": envelope,
            }
        )
        await alice_ws.send_json_to({"type": "typing", "conversation": group["id"]})
        got = await drain(ws, timeout=0.5)
        figures.check(
            not [f for f in got if f["type"] in ("message", "typing", "read")],
            f"{name}: sees others' traffic {got}",
        )
        figures.check(
            not [f for f in got if f["type"] == "presence" and f["user"] in ("alice", "bob")],
            f"{name}: sees presence of strangers {got}",
        )
        await ws.disconnect()
    await alice_ws.disconnect()
    stored = await Message.objects.acount()
    figures.check(stored == 4, f"{stored} messages stored (want 2 + alice's 2)")
    figures.assert_clean()
