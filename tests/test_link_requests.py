"""Linking a device (PROTOCOL §7.2, §7.5): link requests from creation to approval or
denial, every refusal (which changes nothing), expiry, the `X-Device-Id` rule,
MAX_DEVICES, the frames to the user's own sockets, a v1 device certified by linking, and
an approval that fails halfway leaving nothing behind."""

from datetime import datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import DatabaseError, connection
from django.utils import timezone

from chatclient import protocol
from keys.models import Device, LinkRequest
from tests.inprocess import ApiClient, v1_device

db = pytest.mark.django_db
live_db = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"


def error_code(response):
    return response.json_body["error"]["code"]


def log_in(username: str) -> ApiClient:
    """Another browser of the same user: a new session, no device yet."""
    api = ApiClient()
    assert (
        api.post("/api/session/", {"username": username, "password": PASSWORD}).status_code == 200
    )
    return api


def request_body(user, keys, name="new laptop") -> dict:
    """`POST /api/link-requests/` for `keys` (the §1 proof, no cert)."""
    return {
        "name": name,
        "enc_spki": protocol.b64encode(keys.enc_spki),
        "sig_spki": protocol.b64encode(keys.sig_spki),
        "proof": protocol.sign_device_proof(keys, user.user_id),
    }


def approval(user, keys, identity=None) -> dict:
    """`…/approve/` for the new device's `keys`: cert and id_wrap by `identity` (hers)."""
    identity = identity or user.identity
    trust = {"identities": {str(user.user_id): {"id_kid": user.keys.id_kid, "verified": True}}}
    return {
        "cert": protocol.sign_device_cert(identity, user.user_id, keys.enc_kid, keys.sig_kid),
        "id_wrap": protocol.make_id_wrap(
            identity, trust, user_id=user.user_id, enc_public=keys.enc_public, sig_kid=keys.sig_kid
        ),
    }


def as_device(user, device_id=None) -> dict:
    return {"X-Device-Id": str(device_id or user.device_id)}


def create(api, user, keys, name="new laptop"):
    response = api.post("/api/link-requests/", request_body(user, keys, name))
    assert response.status_code == 201, response.json_body
    return response.json_body["link_request"]


def snapshot():
    """Everything a link-request call could change."""
    return (
        list(Device.objects.values_list("pk", "user_id", "enc_kid", "cert", "revoked")),
        list(LinkRequest.objects.values_list("pk", "status", "device_id", "id_wrap", "expires")),
    )


async def frames_until(ws, kind, timeout=5):
    """Frames up to and including the first of type `kind`."""
    frames = []
    while not frames or frames[-1]["type"] != kind:
        frames.append(await ws.receive_json_from(timeout=timeout))
    return frames


async def queued(ws) -> list[dict]:
    """The frames already delivered to this socket (deliveries finish before the request
    that caused them returns)."""
    frames = []
    while not await ws.receive_nothing(timeout=0):
        frames.append(await ws.receive_json_from())
    return frames


def protocol_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def connected(*sockets):
    for ws in sockets:
        assert (await ws.connect())[0]
    return sockets


# --- the whole path ------------------------------------------------------------------------


@live_db
async def test_link_a_device_end_to_end(make_user, device_keys):
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    await sync_to_async(alice.api.post)("/api/conversations/", {"members": ["bob"]})
    first = alice.device_id
    await sync_to_async(alice.register_device)(device_keys(), "phone")
    a1, a2, b_ws = await connected(alice.socket(first), alice.socket(), bob.socket())
    for ws in (a1, a2, b_ws):
        await queued(ws)  # presence and the phone's devices_changed

    newcomer = device_keys()
    new_api = await sync_to_async(log_in)("alice")
    identity = (await sync_to_async(new_api.get)("/api/users/alice/identity/")).json_body
    shown_code = protocol.link_code(
        alice.user_id, identity["identity"]["id_kid"], newcomer.enc_kid, newcomer.sig_kid
    )
    created = await sync_to_async(create)(new_api, alice, newcomer)
    assert set(created) == {
        "id",
        "name",
        "enc_spki",
        "sig_spki",
        "enc_kid",
        "sig_kid",
        "proof",
        "status",
        "created",
        "expires",
    }
    assert created["status"] == "pending" and created["name"] == "new laptop"
    assert created["enc_kid"] == newcomer.enc_kid and created["sig_kid"] == newcomer.sig_kid
    lifetime = protocol_time(created["expires"]) - protocol_time(created["created"])
    assert lifetime == timedelta(minutes=10)
    for ws in (a1, a2):  # both of her devices are told at once
        frame = (await frames_until(ws, "link_request"))[-1]
        assert frame == {"type": "link_request", "link_request": created}
        # The old device computes the code from the request's kids and its own identity.
        code = protocol.link_code(
            alice.user_id, alice.keys.id_kid, frame["link_request"]["enc_kid"], created["sig_kid"]
        )
        assert protocol.same_link_code(protocol.format_link_code(code), shown_code)
    listed = (await sync_to_async(alice.api.get)("/api/link-requests/")).json_body
    assert listed == {"link_requests": [created]}
    polled = (await sync_to_async(new_api.get)(f"/api/link-requests/{created['id']}/")).json_body
    assert polled["link_request"] == {**created, "device": None, "id_wrap": None}

    body = approval(alice, newcomer)
    approved = await sync_to_async(alice.api.post)(
        f"/api/link-requests/{created['id']}/approve/", body, headers=as_device(alice, first)
    )
    assert approved.status_code == 201, approved.json_body
    device = approved.json_body["device"]
    assert device["name"] == "new laptop" and device["cert"] == body["cert"]
    assert device["enc_kid"] == newcomer.enc_kid and device["proof"] == created["proof"]
    for ws in (a1, a2):
        done = (await frames_until(ws, "link_done"))[-1]
        assert done["link_request"]["id"] == created["id"]
        assert done["link_request"]["status"] == "approved"
        assert "id_wrap" not in done["link_request"]
    bob_frames = [f for f in await queued(b_ws) if f["type"] != "presence"]
    assert bob_frames == [  # a contact hears of the device, never of link requests
        {"type": "devices_changed", "user": "alice", "user_id": alice.user_id}
    ]

    # The new device collects its device and the identity key, then connects.
    got = (await sync_to_async(new_api.get)(f"/api/link-requests/{created['id']}/")).json_body
    assert got["link_request"]["status"] == "approved"
    assert (
        got["link_request"]["device"] == device
        and got["link_request"]["id_wrap"] == body["id_wrap"]
    )
    id_private, trust = protocol.open_id_wrap(
        got["link_request"]["id_wrap"], user_id=alice.user_id, device_keys=newcomer
    )
    assert protocol.compute_kid(protocol.spki_of(id_private)) == identity["identity"]["id_kid"]
    assert trust["identities"][str(alice.user_id)]["verified"] is True
    (new_ws,) = await connected(alice.socket(device["id"]))
    await new_ws.send_json_to({"type": "ping"})
    assert (await frames_until(new_ws, "pong"))[-1] == {"type": "pong"}
    assert (await sync_to_async(alice.api.get)("/api/link-requests/")).json_body == {
        "link_requests": []
    }
    # The new device deletes its request once read: the id_wrap leaves the server.
    assert (
        await sync_to_async(new_api.delete)(f"/api/link-requests/{created['id']}/")
    ).status_code == 204
    assert not await LinkRequest.objects.aexists()
    for ws in (a1, a2, b_ws, new_ws):
        await ws.disconnect()


@live_db
async def test_deny_and_cancel(make_user, device_keys):
    alice = await sync_to_async(make_user)("alice")
    (a_ws,) = await connected(alice.socket())
    await queued(a_ws)
    new_api = await sync_to_async(log_in)("alice")
    newcomer = device_keys()
    created = await sync_to_async(create)(new_api, alice, newcomer)
    path = f"/api/link-requests/{created['id']}/"
    assert (await sync_to_async(alice.api.delete)(path)).status_code == 204
    done = (await frames_until(a_ws, "link_done"))[-1]
    assert done["link_request"] == {**created, "status": "denied"}
    seen = (await sync_to_async(new_api.get)(path)).json_body["link_request"]
    assert seen["status"] == "denied" and seen["device"] is None and seen["id_wrap"] is None
    refused = await sync_to_async(alice.api.post)(
        path + "approve/", approval(alice, newcomer), headers=as_device(alice)
    )
    assert refused.status_code == 404 and "denied" in refused.json_body["error"]["detail"]
    # Her keys are free again for a new request once the denied one is gone.
    assert (await sync_to_async(new_api.delete)(path)).status_code == 204
    assert (await sync_to_async(new_api.get)(path)).status_code == 404
    assert await queued(a_ws) == []  # deleting a decided request tells nobody
    again = await sync_to_async(create)(new_api, alice, newcomer)
    assert (await frames_until(a_ws, "link_request"))[-1]["link_request"] == again
    # The new device cancels its own request.
    assert (
        await sync_to_async(new_api.delete)(f"/api/link-requests/{again['id']}/")
    ).status_code == 204
    assert (await frames_until(a_ws, "link_done"))[-1]["link_request"]["status"] == "denied"
    assert not await Device.objects.filter(enc_kid=newcomer.enc_kid).aexists()
    await a_ws.disconnect()


@live_db
async def test_a_v1_device_gets_its_cert_by_linking(make_user, device_keys, settings):
    """§7.5: a user upgraded on one device; her other v1 device asks with its existing
    keys (no duplicate_key), and the approval certifies it instead of adding a device
    (so MAX_DEVICES does not count it)."""
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    await sync_to_async(alice.api.post)("/api/conversations/", {"members": ["bob"]})
    old_keys = device_keys()
    old_id = await sync_to_async(v1_device)(alice, old_keys, "old tablet")
    settings.MAX_DEVICES = 2
    a_ws, old_ws, b_ws = await connected(alice.socket(), alice.socket(old_id), bob.socket())
    for ws in (a_ws, old_ws, b_ws):
        await queued(ws)
    created = await sync_to_async(create)(alice.api, alice, old_keys, "ignored name")
    assert (await frames_until(old_ws, "link_request"))[-1]["link_request"] == created
    body = approval(alice, old_keys)
    approved = await sync_to_async(alice.api.post)(
        f"/api/link-requests/{created['id']}/approve/", body, headers=as_device(alice)
    )
    assert approved.status_code == 201, approved.json_body
    device = approved.json_body["device"]
    assert device["id"] == old_id and device["name"] == "old tablet"
    assert device["cert"] == body["cert"]
    assert await Device.objects.filter(user_id=alice.user_id).acount() == 2
    stored = await Device.objects.select_related("identity").aget(pk=old_id)
    assert stored.cert == body["cert"] and stored.identity.id_kid == alice.keys.id_kid
    assert [f["type"] for f in await queued(b_ws) if f["type"] != "presence"] == ["devices_changed"]
    assert (await frames_until(old_ws, "link_done"))[-1]["link_request"]["status"] == "approved"
    for ws in (a_ws, old_ws, b_ws):
        await ws.disconnect()


# --- refusals -------------------------------------------------------------------------------


@db
@pytest.mark.parametrize(
    "case, status, code",
    [
        ("not_base64", 400, "bad_request"),
        ("empty_name", 400, "bad_request"),
        ("no_proof", 400, "bad_request"),
        ("small_key", 400, "invalid_key"),
        ("same_keys", 400, "invalid_key"),
        ("proof_for_another_user", 400, "bad_proof"),
        ("another_users_device", 409, "duplicate_key"),
        ("own_certified_device", 409, "duplicate_key"),
        ("an_identity_key", 409, "duplicate_key"),
        ("half_of_a_v1_device", 409, "duplicate_key"),
        ("held_by_a_pending_request", 409, "duplicate_key"),
        ("no_identity", 400, "bad_request"),
        ("sixth_pending", 429, "rate_limited"),
    ],
)
def test_create_refusals_change_nothing(make_user, device_keys, case, status, code):
    from Crypto.PublicKey import RSA

    alice = make_user("alice")
    bob = make_user("bob")
    keys = device_keys()
    body = request_body(alice, keys)
    api = alice.api
    if case == "not_base64":
        body["sig_spki"] = body["sig_spki"] + "\n"
    elif case == "empty_name":
        body["name"] = ""
    elif case == "no_proof":
        del body["proof"]
    elif case == "small_key":
        body["enc_spki"] = protocol.b64encode(RSA.generate(1024).public_key().export_key("DER"))
    elif case == "same_keys":
        body["enc_spki"] = body["sig_spki"]
    elif case == "proof_for_another_user":
        body["proof"] = protocol.sign_device_proof(keys, bob.user_id)
    elif case == "another_users_device":
        body = request_body(alice, bob.keys)
    elif case == "own_certified_device":
        body = request_body(alice, alice.keys)
    elif case == "an_identity_key":
        mixed = protocol.DeviceKeys(enc_private=bob.identity, sig_private=keys.sig_private)
        body = request_body(alice, mixed)
    elif case == "half_of_a_v1_device":
        v1_device(alice, keys)
        mixed = protocol.DeviceKeys(
            enc_private=keys.enc_private, sig_private=device_keys().sig_private
        )
        body = request_body(alice, mixed)
    elif case == "held_by_a_pending_request":
        create(api, alice, keys)
    elif case == "no_identity":
        carol = make_user("carol", with_device=False)
        api, body = carol.api, request_body(carol, keys)
    elif case == "sixth_pending":
        for _ in range(5):
            create(api, alice, device_keys())
    before = snapshot()
    response = api.post("/api/link-requests/", body)
    assert response.status_code == status, response.json_body
    assert error_code(response) == code, response.json_body
    assert snapshot() == before


@db
@pytest.mark.parametrize(
    "case, status, code",
    [
        ("unknown", 404, "not_found"),
        ("another_users", 404, "not_found"),
        ("expired", 404, "not_found"),
        ("approved_already", 404, "not_found"),
        ("denied", 404, "not_found"),
        ("device_of_another_user", 403, "forbidden"),
        ("revoked_own_device", 403, "forbidden"),
        ("garbage_device_header", 403, "forbidden"),
        ("no_header_no_certified_device", 403, "forbidden"),
        ("wrap_not_an_object", 400, "bad_request"),
        ("wrap_missing_ct", 400, "bad_request"),
        ("wrap_extra_field", 400, "bad_request"),
        ("wrap_short_iv", 400, "bad_request"),
        ("wrap_not_canonical", 400, "bad_request"),
        ("wrap_ek_for_another_key", 400, "bad_request"),
        ("wrap_ct_shorter_than_tag", 400, "bad_request"),
        ("no_cert", 400, "bad_request"),
        ("cert_by_another_identity", 400, "bad_cert"),
        ("cert_for_other_kids", 400, "bad_cert"),
        ("cert_not_base64", 400, "bad_cert"),
        ("max_devices", 400, "bad_request"),
        ("keys_registered_meanwhile", 409, "duplicate_key"),
    ],
)
def test_approve_refusals_change_nothing(make_user, device_keys, settings, case, status, code):
    alice = make_user("alice")
    bob = make_user("bob")
    newcomer = device_keys()
    created = create(alice.api, alice, newcomer)
    request_id, api, headers = created["id"], alice.api, as_device(alice)
    body = approval(alice, newcomer)
    wrap = body["id_wrap"]
    if case == "unknown":
        request_id = 999999
    elif case == "another_users":
        api, headers = bob.api, as_device(bob)
    elif case == "expired":
        LinkRequest.objects.filter(pk=request_id).update(expires=timezone.now())
    elif case == "approved_already":
        assert (
            alice.api.post(
                f"/api/link-requests/{request_id}/approve/", body, headers=headers
            ).status_code
            == 201
        )
    elif case == "denied":
        assert alice.api.delete(f"/api/link-requests/{request_id}/").status_code == 204
    elif case == "device_of_another_user":
        headers = as_device(bob)
    elif case == "revoked_own_device":
        first = alice.device_id
        alice.register_device(device_keys(), "second")
        assert alice.api.delete(f"/api/devices/{first}/").status_code == 204
        headers = as_device(alice, first)
    elif case == "garbage_device_header":
        headers = {"X-Device-Id": "1 OR 1=1"}
    elif case == "no_header_no_certified_device":
        Device.objects.filter(pk=alice.device_id).update(revoked=timezone.now())
        headers = None
    elif case == "wrap_not_an_object":
        body["id_wrap"] = "ek.iv.ct"
    elif case == "wrap_missing_ct":
        body["id_wrap"] = {"ek": wrap["ek"], "iv": wrap["iv"]}
    elif case == "wrap_extra_field":
        body["id_wrap"] = {**wrap, "v": 2}
    elif case == "wrap_short_iv":
        body["id_wrap"] = {**wrap, "iv": protocol.b64encode(bytes(11))}
    elif case == "wrap_not_canonical":
        body["id_wrap"] = {**wrap, "ct": " " + wrap["ct"]}
    elif case == "wrap_ek_for_another_key":
        body["id_wrap"] = {**wrap, "ek": protocol.b64encode(bytes(128))}  # 1024-bit size
    elif case == "wrap_ct_shorter_than_tag":
        body["id_wrap"] = {**wrap, "ct": protocol.b64encode(bytes(15))}
    elif case == "no_cert":
        del body["cert"]
    elif case == "cert_by_another_identity":
        body["cert"] = approval(alice, newcomer, identity=bob.identity)["cert"]
    elif case == "cert_for_other_kids":
        body["cert"] = approval(alice, device_keys())["cert"]
    elif case == "cert_not_base64":
        body["cert"] = "not base64"
    elif case == "max_devices":
        settings.MAX_DEVICES = 1
    elif case == "keys_registered_meanwhile":
        alice.register_device(newcomer, "registered directly")
    before = snapshot()
    response = api.post(f"/api/link-requests/{request_id}/approve/", body, headers=headers)
    assert response.status_code == status, response.json_body
    assert error_code(response) == code, response.json_body
    if case == "expired":  # refused, and deleted
        assert "expired" in response.json_body["error"]["detail"]
        assert not LinkRequest.objects.exists()
    else:
        assert snapshot() == before


@db
def test_an_approval_that_fails_halfway_leaves_nothing(make_user, device_keys):
    """The device row is written, then storing the request's approval fails (a real
    database trigger refuses it): the transaction takes the device back with it."""
    alice = make_user("alice")
    newcomer = device_keys()
    created = create(alice.api, alice, newcomer)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "CREATE TRIGGER refuse_approval BEFORE UPDATE OF status ON keys_linkrequest "
                "WHEN NEW.status = 'approved' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        else:
            cursor.execute(
                "CREATE FUNCTION refuse_approval() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_approval BEFORE UPDATE ON keys_linkrequest FOR EACH ROW "
                "WHEN (NEW.status = 'approved') EXECUTE FUNCTION refuse_approval()"
            )
    before = snapshot()
    path = f"/api/link-requests/{created['id']}/approve/"
    with pytest.raises(DatabaseError):
        alice.api.post(path, approval(alice, newcomer), headers=as_device(alice))
    assert snapshot() == before
    assert not Device.objects.filter(enc_kid=newcomer.enc_kid).exists()
    assert LinkRequest.objects.get(pk=created["id"]).status == LinkRequest.PENDING
    with connection.cursor() as cursor:
        cursor.execute(
            "DROP TRIGGER refuse_approval"
            if connection.vendor == "sqlite"
            else "DROP TRIGGER refuse_approval ON keys_linkrequest"
        )
    done = alice.api.post(path, approval(alice, newcomer), headers=as_device(alice))
    assert done.status_code == 201  # the same approval goes through once nothing fails


# --- reading, expiry, other users -----------------------------------------------------------


@db
def test_lists_and_reads_are_per_user_and_expired_ones_go(make_user, device_keys):
    alice = make_user("alice")
    bob = make_user("bob")
    older = create(alice.api, alice, device_keys(), "older")
    newer = create(alice.api, alice, device_keys(), "newer")
    bobs = create(bob.api, bob, device_keys(), "bob's")
    assert [r["id"] for r in alice.api.get("/api/link-requests/").json_body["link_requests"]] == [
        newer["id"],
        older["id"],
    ]
    assert [r["id"] for r in bob.api.get("/api/link-requests/").json_body["link_requests"]] == [
        bobs["id"]
    ]
    for method in ("get", "delete"):
        foreign = getattr(bob.api, method)(f"/api/link-requests/{older['id']}/")
        assert foreign.status_code == 404 and error_code(foreign) == "not_found"
    assert LinkRequest.objects.get(pk=older["id"]).status == LinkRequest.PENDING

    # An expired pending request: refused as expired, and deleted with every other
    # expired one (approved or denied too) whenever a link-request endpoint runs.
    LinkRequest.objects.filter(pk=older["id"]).update(expires=timezone.now() - timedelta(seconds=1))
    gone = alice.api.get(f"/api/link-requests/{older['id']}/")
    assert gone.status_code == 404 and "expired" in gone.json_body["error"]["detail"]
    assert not LinkRequest.objects.filter(pk=older["id"]).exists()
    LinkRequest.objects.filter(pk=bobs["id"]).update(
        status=LinkRequest.DENIED, expires=timezone.now() - timedelta(seconds=1)
    )
    assert [r["id"] for r in alice.api.get("/api/link-requests/").json_body["link_requests"]] == [
        newer["id"]
    ]
    assert not LinkRequest.objects.filter(pk=bobs["id"]).exists()
    for method, path in (
        ("get", "/api/link-requests/"),
        ("get", f"/api/link-requests/{newer['id']}/"),
        ("delete", f"/api/link-requests/{newer['id']}/"),
    ):
        assert getattr(ApiClient(), method)(path).status_code == 401
    assert ApiClient().post("/api/link-requests/", {}).status_code == 401


@db
def test_approval_keeps_the_request_ten_minutes_from_then(make_user, device_keys):
    alice = make_user("alice")
    newcomer = device_keys()
    created = create(alice.api, alice, newcomer)
    LinkRequest.objects.filter(pk=created["id"]).update(
        expires=timezone.now() + timedelta(seconds=30)
    )
    path = f"/api/link-requests/{created['id']}/"
    approved = alice.api.post(
        path + "approve/", approval(alice, newcomer), headers=as_device(alice)
    )
    assert approved.status_code == 201
    left = LinkRequest.objects.get(pk=created["id"]).expires - timezone.now()
    assert timedelta(minutes=9) < left <= timedelta(minutes=10)
    # Without X-Device-Id the session's user needs a certified active device: she has.
    second = device_keys()
    again = create(alice.api, alice, second)
    assert (
        alice.api.post(
            f"/api/link-requests/{again['id']}/approve/", approval(alice, second)
        ).status_code
        == 201
    )
