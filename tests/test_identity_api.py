"""Identity keys (PROTOCOL §7.1, §7.5) and device certificates (§1): every answer of
`PUT /api/identity/`, `GET /api/users/<u>/identity/` and `POST /api/devices/<id>/cert/`,
what a reset does to devices, sockets and link requests, and who is told."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from Crypto.PublicKey import ECC, RSA

from chatclient import protocol
from keys.models import Device, Identity, LinkRequest
from tests.inprocess import ApiClient, device_body, identity_body, next_of, v1_device

db = pytest.mark.django_db
live_db = pytest.mark.django_db(transaction=True)


def error_code(response):
    return response.json_body["error"]["code"]


def put_identity(user, body):
    return user.api.call("PUT", "/api/identity/", body)


def snapshot():
    """Everything an identity or cert request could change."""
    return (
        list(Identity.objects.values_list("pk", "user_id", "id_kid", "replaced")),
        list(Device.objects.values_list("pk", "cert", "identity_id", "revoked")),
    )


async def closed_with(ws, code, timeout=5.0):
    while True:
        output = await asyncio.wait_for(ws.output_queue.get(), timeout)
        if output["type"] == "websocket.close":
            assert output.get("code") == code
            return


async def connected(*sockets):
    for ws in sockets:
        assert (await ws.connect())[0]
    return sockets


# --- PUT /api/identity/ -----------------------------------------------------------------


@db
def test_first_identity_is_201_the_same_again_200(make_user, device_keys):
    alice = make_user("alice", with_device=False)
    identity = device_keys().id_private
    first = put_identity(alice, identity_body(alice.user_id, identity))
    assert first.status_code == 201
    shown = first.json_body["identity"]
    assert set(shown) == {"id_spki", "id_kid", "proof", "upgrade", "created"}
    assert shown["id_kid"] == protocol.compute_kid(protocol.spki_of(identity))
    assert shown["upgrade"] is None and shown["created"].endswith("Z")
    again = put_identity(alice, identity_body(alice.user_id, identity))
    assert again.status_code == 200 and again.json_body["identity"] == shown
    assert Identity.objects.filter(user_id=alice.user_id).count() == 1


def _spki(key) -> str:
    return protocol.b64encode(key.public_key().export_key("DER"))


@db
@pytest.mark.parametrize(
    "case, status, code",
    [
        ("not_base64", 400, "bad_request"),
        ("no_proof", 400, "bad_request"),
        ("ec_key", 400, "invalid_key"),
        ("small_key", 400, "invalid_key"),
        ("a_device_key", 409, "duplicate_key"),
        ("another_users_identity", 409, "duplicate_key"),
        ("proof_by_another_key", 400, "bad_proof"),
        ("proof_for_another_user", 400, "bad_proof"),
        ("proof_not_base64", 400, "bad_request"),
        ("upgrade_shape", 400, "bad_request"),
        ("upgrade_by_a_foreign_device", 400, "bad_signature"),
        ("upgrade_by_a_revoked_device", 400, "bad_signature"),
        ("upgrade_over_another_kid", 400, "bad_signature"),
        ("another_key_without_replace", 409, "identity_exists"),
    ],
)
def test_put_identity_refusals_change_nothing(make_user, device_keys, case, status, code):
    alice = make_user("alice", with_device=False)
    bob = make_user("bob")
    keys = device_keys()
    identity = keys.id_private
    body = identity_body(alice.user_id, identity)
    old_device = v1_device(alice, keys, "old laptop")
    if case == "upgrade_by_a_revoked_device":
        Device.objects.filter(pk=old_device).update(revoked="2020-01-01T00:00:00Z")
    if case == "another_key_without_replace":
        alice.set_identity(device_keys().id_private)
    before = snapshot()
    if case == "not_base64":
        body["id_spki"] = body["id_spki"] + "\n"
    elif case == "no_proof":
        del body["proof"]
    elif case == "ec_key":
        body["id_spki"] = protocol.b64encode(
            ECC.generate(curve="P-256").public_key().export_key(format="DER")
        )
    elif case == "small_key":
        body["id_spki"] = _spki(RSA.generate(1024))
    elif case == "a_device_key":
        body["id_spki"] = protocol.b64encode(bob.keys.sig_spki)
    elif case == "another_users_identity":
        body = identity_body(alice.user_id, bob.identity)
    elif case == "proof_by_another_key":
        body["proof"] = identity_body(alice.user_id, bob.identity)["proof"]
    elif case == "proof_for_another_user":
        body["proof"] = identity_body(bob.user_id, identity)["proof"]
    elif case == "proof_not_base64":
        body["proof"] = "AAA"
    elif case == "upgrade_shape":
        body["upgrade"] = {"sig_kid": keys.sig_kid}
    elif case == "upgrade_by_a_foreign_device":
        body["upgrade"] = protocol.sign_identity_upgrade(bob.keys, alice.user_id, keys.id_kid)
    elif case in ("upgrade_by_a_revoked_device",):
        body["upgrade"] = protocol.sign_identity_upgrade(keys, alice.user_id, keys.id_kid)
    elif case == "upgrade_over_another_kid":
        body["upgrade"] = protocol.sign_identity_upgrade(keys, alice.user_id, bob.keys.id_kid)
    response = put_identity(alice, body)
    assert response.status_code == status, response.json_body
    assert error_code(response) == code, response.json_body
    assert snapshot() == before


@db
def test_get_identity_open_to_every_logged_in_user(make_user):
    alice = make_user("alice")
    carol = make_user("carol", with_device=False)
    seen = carol.api.get("/api/users/alice/identity/").json_body
    assert seen["user"] == {"id": alice.user_id, "username": "alice"}
    assert seen["identity"]["id_kid"] == alice.keys.id_kid and seen["previous"] == []
    none = alice.api.get("/api/users/carol/identity/").json_body
    assert none["identity"] is None and none["previous"] == []
    unknown = alice.api.get("/api/users/nobody/identity/")
    assert unknown.status_code == 404 and error_code(unknown) == "not_found"
    anonymous = ApiClient()
    assert anonymous.get("/api/users/alice/identity/").status_code == 401
    refused = anonymous.call("PUT", "/api/identity/", identity_body(1, alice.identity))
    assert refused.status_code == 401 and error_code(refused) == "not_authenticated"


@live_db
async def test_reset_revokes_every_device_closes_sockets_denies_links(make_user, device_keys):
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    carol = await sync_to_async(make_user)("carol")
    await sync_to_async(alice.api.post)("/api/conversations/", {"members": ["bob"]})
    first = alice.device_id
    await sync_to_async(alice.register_device)(device_keys(), "phone")
    old_identity = alice.identity
    newcomer = device_keys()
    request_body = device_body(alice.user_id, newcomer)
    del request_body["cert"]
    created = await sync_to_async(alice.api.post)("/api/link-requests/", request_body)
    assert created.status_code == 201
    a1, a2, b_ws, c_ws = await connected(
        alice.socket(first), alice.socket(), bob.socket(), carol.socket()
    )
    new_identity = device_keys().id_private
    body = {**identity_body(alice.user_id, new_identity), "replace": True}
    response = await sync_to_async(put_identity)(alice, body)
    assert response.status_code == 201
    assert response.json_body["identity"]["id_kid"] == protocol.compute_kid(
        protocol.spki_of(new_identity)
    )
    await closed_with(a1, 4403)
    await closed_with(a2, 4403)
    changed = await next_of(b_ws, "devices_changed")
    assert changed == {"type": "devices_changed", "user": "alice", "user_id": alice.user_id}
    assert not await Device.objects.active().filter(user_id=alice.user_id).aexists()
    request = await LinkRequest.objects.aget(pk=created.json_body["link_request"]["id"])
    assert request.status == LinkRequest.DENIED
    listed = (await sync_to_async(bob.api.get)("/api/users/alice/identity/")).json_body
    assert listed["identity"]["id_kid"] == protocol.compute_kid(protocol.spki_of(new_identity))
    (previous,) = listed["previous"]
    assert previous["id_kid"] == protocol.compute_kid(protocol.spki_of(old_identity))
    assert previous["replaced"].endswith("Z")
    # Devices come back only under the new identity.
    keys = device_keys()
    stale = device_body(alice.user_id, keys.with_identity(old_identity))
    refused = await sync_to_async(alice.api.post)("/api/devices/", stale)
    assert refused.status_code == 400 and error_code(refused) == "bad_cert"
    fresh = device_body(alice.user_id, keys.with_identity(new_identity))
    assert (await sync_to_async(alice.api.post)("/api/devices/", fresh)).status_code == 201
    # carol shares no conversation with alice: told nothing (frames are delivered before
    # the request that caused them returns).
    assert await c_ws.receive_nothing(timeout=0)
    for ws in (b_ws, c_ws):
        await ws.disconnect()


@live_db
async def test_setting_an_identity_tells_contacts(make_user, device_keys):
    """A v1 user (no identity, one v1 device) upgrades: PUT with the upgrade signature,
    then certifies her device; her contact hears of both."""
    alice = await sync_to_async(make_user)("alice", with_device=False)
    bob = await sync_to_async(make_user)("bob")
    keys = device_keys()
    device_id = await sync_to_async(v1_device)(alice, keys)
    await sync_to_async(alice.api.post)("/api/conversations/", {"members": ["bob"]})
    a_ws, b_ws = await connected(alice.socket(device_id), bob.socket())
    identity = keys.id_private
    body = {
        **identity_body(alice.user_id, identity),
        "upgrade": protocol.sign_identity_upgrade(keys, alice.user_id, keys.id_kid),
    }
    response = await sync_to_async(put_identity)(alice, body)
    assert response.status_code == 201
    assert response.json_body["identity"]["upgrade"] == body["upgrade"]
    assert (await next_of(b_ws, "devices_changed"))["user"] == "alice"
    assert (await next_of(a_ws, "devices_changed"))["user"] == "alice"
    listed = (await sync_to_async(bob.api.get)("/api/users/alice/devices/")).json_body
    assert listed["devices"][0]["cert"] is None  # a v1 device until it is certified
    cert = device_body(alice.user_id, keys)["cert"]
    certified = await sync_to_async(alice.api.post)(
        f"/api/devices/{device_id}/cert/", {"cert": cert}
    )
    assert certified.status_code == 200, certified.json_body
    assert certified.json_body["device"]["id"] == device_id
    assert certified.json_body["device"]["cert"] == cert
    assert (await next_of(b_ws, "devices_changed"))["user"] == "alice"
    assert (await next_of(a_ws, "devices_changed"))["user"] == "alice"
    listed = (await sync_to_async(bob.api.get)("/api/users/alice/identity/")).json_body
    assert listed["identity"]["upgrade"]["sig_kid"] == keys.sig_kid
    device = await Device.objects.select_related("identity").aget(pk=device_id)
    assert device.cert == cert and device.identity.id_kid == keys.id_kid
    for ws in (a_ws, b_ws):
        await ws.disconnect()


# --- POST /api/devices/<id>/cert/ ---------------------------------------------------------


@db
@pytest.mark.parametrize(
    "case, status, code",
    [
        ("another_users_device", 404, "not_found"),
        ("unknown_device", 404, "not_found"),
        ("revoked", 400, "bad_request"),
        ("no_identity", 400, "bad_cert"),
        ("not_base64", 400, "bad_cert"),
        ("by_another_identity", 400, "bad_cert"),
        ("for_other_kids", 400, "bad_cert"),
        ("for_another_user", 400, "bad_cert"),
        ("certified_already_other_cert", 400, "bad_request"),
        ("empty_body", 400, "bad_request"),
    ],
)
def test_cert_refusals_change_nothing(make_user, device_keys, case, status, code):
    alice = make_user("alice", with_device=False)
    bob = make_user("bob")
    keys = device_keys()
    device_id = v1_device(alice, keys)
    if case != "no_identity":
        alice.set_identity(keys.id_private)
    cert = device_body(alice.user_id, keys)["cert"]
    path = f"/api/devices/{device_id}/cert/"
    if case == "another_users_device":
        path = f"/api/devices/{bob.device_id}/cert/"
    elif case == "unknown_device":
        path = "/api/devices/999999/cert/"
    elif case == "revoked":
        Device.objects.filter(pk=device_id).update(revoked="2020-01-01T00:00:00Z")
    elif case == "not_base64":
        cert = "AAA"
    elif case == "by_another_identity":
        cert = device_body(alice.user_id, keys.with_identity(bob.identity))["cert"]
    elif case == "for_other_kids":
        cert = device_body(alice.user_id, device_keys().with_identity(keys.id_private))["cert"]
    elif case == "for_another_user":
        cert = device_body(bob.user_id, keys)["cert"]
    elif case == "certified_already_other_cert":
        assert alice.api.post(path, {"cert": cert}).status_code == 200
        cert = device_body(alice.user_id, keys)["cert"]  # PSS: another valid signature
    before = snapshot()
    response = alice.api.post(path, {} if case == "empty_body" else {"cert": cert})
    assert response.status_code == status, response.json_body
    assert error_code(response) == code, response.json_body
    assert snapshot() == before


@db
def test_the_same_cert_again_is_200_unchanged(make_user, device_keys):
    alice = make_user("alice")
    cert = Device.objects.get(pk=alice.device_id).cert
    response = alice.api.post(f"/api/devices/{alice.device_id}/cert/", {"cert": cert})
    assert response.status_code == 200 and response.json_body["device"]["cert"] == cert
    assert (
        ApiClient().post(f"/api/devices/{alice.device_id}/cert/", {"cert": cert}).status_code == 401
    )
