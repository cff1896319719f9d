"""The device registry (PROTOCOL §1, §4): key checks, proof, certificate, uniqueness,
MAX_DEVICES, listing, revocation."""

import pytest
from Crypto.PublicKey import ECC, RSA

from chatclient import protocol
from keys.models import Device
from tests.inprocess import ApiClient, device_body

pytestmark = pytest.mark.django_db


def error_code(response):
    return response.json_body["error"]["code"]


def test_register_device_returns_kids(make_user, device_keys):
    alice = make_user("alice", with_device=False)
    keys = device_keys()
    alice.set_identity(keys.id_private)
    response = alice.api.post("/api/devices/", device_body(alice.user_id, keys, "laptop"))
    assert response.status_code == 201
    body = response.json_body
    assert body["enc_kid"] == keys.enc_kid and body["sig_kid"] == keys.sig_kid
    assert body["name"] == "laptop" and body["created"].endswith("Z") and body["revoked"] is None
    assert protocol.verify_device_cert(
        keys.id_public, alice.user_id, keys.enc_kid, keys.sig_kid, body["cert"]
    )
    device = Device.objects.get(pk=body["id"])
    assert device.identity.id_kid == keys.id_kid and device.cert == body["cert"]
    listed = alice.api.get("/api/users/alice/devices/").json_body["devices"]
    assert listed[0]["cert"] == body["cert"]


def test_register_device_needs_login(device_keys):
    response = ApiClient().post("/api/devices/", device_body(1, device_keys()))
    assert response.status_code == 401 and error_code(response) == "not_authenticated"


def long_form_length(der: bytes) -> bytes:
    """The same key with a non-minimal outer length (valid BER, not canonical DER)."""
    assert der[0] == 0x30 and der[1] == 0x82
    return b"\x30\x83\x00" + der[2:]


def spki_b64(key) -> str:
    return protocol.b64encode(key.public_key().export_key("DER"))


@pytest.mark.parametrize(
    "replace, expected",
    [
        ({"enc_spki": "not base64!"}, "bad_request"),
        ({"enc_spki": "QUJD"}, "invalid_key"),  # base64 of "ABC": not a key
        ("small", "invalid_key"),
        ("exponent3", "invalid_key"),
        ("ec", "invalid_key"),
        ("long_form_length", "invalid_key"),
        ("same", "invalid_key"),
        ("wrong_user_proof", "bad_proof"),
        ({"proof": "AAAA"}, "bad_proof"),
        ({"proof": "AAA"}, "bad_request"),
        ("no_cert", "bad_request"),
        ({"cert": "AAAA"}, "bad_cert"),
        ({"cert": "AAA"}, "bad_cert"),
        ("cert_by_another_identity", "bad_cert"),
        ("cert_for_another_user", "bad_cert"),
        ("cert_for_other_kids", "bad_cert"),
        ("no_identity", "bad_cert"),
    ],
)
def test_register_device_refusals(make_user, device_keys, replace, expected):
    alice = make_user("alice", with_device=False)
    keys = device_keys()
    if replace != "no_identity":
        alice.set_identity(keys.id_private)
    body = device_body(alice.user_id, keys)
    other = device_keys()
    if replace == "small":
        body["enc_spki"] = spki_b64(RSA.generate(1024))
    elif replace == "exponent3":
        body["enc_spki"] = spki_b64(RSA.generate(2048, e=3))
    elif replace == "ec":
        body["enc_spki"] = protocol.b64encode(
            ECC.generate(curve="P-256").public_key().export_key(format="DER")
        )
    elif replace == "long_form_length":
        body["enc_spki"] = protocol.b64encode(long_form_length(keys.enc_spki))
    elif replace == "same":
        body["sig_spki"] = body["enc_spki"]
    elif replace == "wrong_user_proof":
        body["proof"] = protocol.sign_device_proof(keys, alice.user_id + 1)
    elif replace == "no_cert":
        del body["cert"]
    elif replace == "cert_by_another_identity":
        body["cert"] = device_body(alice.user_id, keys.with_identity(other.id_private))["cert"]
    elif replace == "cert_for_another_user":
        body["cert"] = device_body(alice.user_id + 1, keys)["cert"]
    elif replace == "cert_for_other_kids":
        body["cert"] = device_body(alice.user_id, other.with_identity(keys.id_private))["cert"]
    elif isinstance(replace, str):
        pass
    else:
        body.update(replace)
    response = alice.api.post("/api/devices/", body)
    assert response.status_code in (400, 409)
    assert error_code(response) == expected, response.json_body
    assert not Device.objects.exists()


def test_duplicate_key_across_users(make_user, device_keys):
    alice = make_user("alice")
    bob = make_user("bob", with_device=False)
    response = bob.api.post("/api/devices/", device_body(bob.user_id, alice.keys))
    assert response.status_code == 409 and error_code(response) == "duplicate_key"
    again = alice.api.post("/api/devices/", device_body(alice.user_id, alice.keys))
    assert again.status_code == 409
    assert Device.objects.count() == 1


def test_max_devices(make_user, device_keys, settings):
    settings.MAX_DEVICES = 2
    alice = make_user("alice")
    alice.register_device(device_keys(), "second")
    third = device_body(alice.user_id, device_keys().with_identity(alice.identity))
    refused = alice.api.post("/api/devices/", third)
    assert refused.status_code == 400 and error_code(refused) == "bad_request"
    assert "2 active devices" in refused.json_body["error"]["detail"]
    assert Device.objects.filter(user_id=alice.user_id).count() == 2
    # A revoked device frees its place.
    assert alice.api.delete(f"/api/devices/{alice.device_id}/").status_code == 204
    assert alice.api.post("/api/devices/", third).status_code == 201


def test_list_revoke_and_lookup(make_user, device_keys):
    alice = make_user("alice")
    bob = make_user("bob")
    first = alice.device_id
    alice.register_device(device_keys(), "phone")
    own = alice.api.get("/api/devices/").json_body["devices"]
    assert [d["id"] for d in own] == [first, alice.device_id]

    assert bob.api.delete(f"/api/devices/{first}/").status_code == 404
    assert alice.api.delete(f"/api/devices/{first}/").status_code == 204
    assert alice.api.delete(f"/api/devices/{first}/").status_code == 204  # idempotent
    own = {d["id"]: d for d in alice.api.get("/api/devices/").json_body["devices"]}
    assert own[first]["revoked"] is not None

    active = bob.api.get("/api/users/alice/devices/").json_body
    assert active["user"] == {"id": alice.user_id, "username": "alice"}
    assert [d["id"] for d in active["devices"]] == [alice.device_id]
    everything = bob.api.get("/api/users/alice/devices/?include_revoked=1").json_body["devices"]
    assert {d["id"] for d in everything} == {first, alice.device_id}
    assert {"enc_spki", "sig_spki", "proof", "enc_kid", "sig_kid"} <= set(everything[0])

    revoked = own[first]
    for kid in (revoked["enc_kid"], revoked["sig_kid"]):
        looked_up = bob.api.get(f"/api/keys/{kid}/").json_body
        assert looked_up["device"]["id"] == first and looked_up["user"]["username"] == "alice"
    assert bob.api.get("/api/keys/" + "0" * 64 + "/").status_code == 404
    assert bob.api.get("/api/users/nobody/devices/").status_code == 404


def test_device_endpoints_need_login():
    api = ApiClient()
    for path in ["/api/devices/", "/api/users/alice/devices/", "/api/keys/" + "0" * 64 + "/"]:
        assert api.get(path).status_code == 401
    assert api.delete("/api/devices/1/").status_code == 401
