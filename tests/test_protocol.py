"""chatclient.protocol: encodings, keys, device proofs, envelopes and the known-answer vectors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from functools import cache
from pathlib import Path

import pytest
from Crypto.Cipher import AES, PKCS1_OAEP
from Crypto.Hash import SHA256
from Crypto.PublicKey import ECC, RSA
from Crypto.Signature import pss
from Crypto.Util.asn1 import DerSequence

from chatclient.protocol import (
    DeviceKeys,
    OpenError,
    ProtocolError,
    b64decode,
    b64encode,
    compute_kid,
    device_keys_from_pkcs8,
    device_proof_message,
    generate_device_keys,
    import_public_key,
    is_client_msg_id,
    key_commitment,
    message_aad,
    new_client_msg_id,
    open_envelope,
    seal_envelope,
    sign_device_proof,
    signed_string,
    text_message,
    validate_envelope,
    verify_device_proof,
    verify_envelope_signature,
)

VECTORS = Path(__file__).parent / "vectors"
CMID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@cache
def fixed_keys() -> dict[str, DeviceKeys]:
    stored = json.loads((VECTORS / "keys.json").read_text())
    return {
        name: device_keys_from_pkcs8(b64decode(entry["enc_pkcs8"]), b64decode(entry["sig_pkcs8"]))
        for name, entry in stored.items()
    }


@cache
def generated_keys() -> DeviceKeys:
    return generate_device_keys(2048)


def load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


def flip(b64: str, index: int = 0) -> str:
    data = bytearray(base64.b64decode(b64))
    data[index] ^= 1
    return b64encode(bytes(data))


# --- base64 ------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"f", b"fo", b"foo", b"foob", bytes(range(256))])
def test_b64_round_trip(data):
    assert b64decode(b64encode(data)) == data


@pytest.mark.parametrize(
    "text",
    ["Zg", "Zg=", "Zm9v\n", " Zm9v", "Zm 9v", "-_-_", "Zh==", "Zm9=", "Zg==Zg==", "Zg===", "é", 5],
)
def test_b64decode_rejects_non_canonical(text):
    with pytest.raises(ProtocolError) as exc:
        b64decode(text)
    assert exc.value.code == "bad_request"


def test_b64decode_checks_length():
    assert b64decode("Zm9v", 3) == b"foo"
    with pytest.raises(ProtocolError):
        b64decode("Zm9v", 4)


# --- ids ---------------------------------------------------------------------------------


def test_client_msg_ids():
    made = new_client_msg_id()
    assert is_client_msg_id(made) and uuid.UUID(made).version == 4
    assert is_client_msg_id(CMID)
    for bad in [CMID.upper(), CMID.replace("-", ""), "{" + CMID + "}", CMID + " ", None, 7]:
        assert not is_client_msg_id(bad)


def test_message_aad_and_signed_string():
    aad = message_aad(7, 1, CMID)
    assert aad == f"e2ee-chat/v1/msg|7|1|{CMID}"
    assert signed_string(aad, "aXY=", "Y3Q=", "a2M=") == f"{aad}|aXY=|Y3Q=|a2M=".encode()
    for args in [("7", 1, CMID), (7, True, CMID), (7, 1, CMID.upper())]:
        with pytest.raises(ProtocolError):
            message_aad(*args)


def test_key_commitment_is_hmac_sha256():
    key = bytes(range(32))
    expected = hmac.new(key, b"e2ee-chat/v1/key-commitment", hashlib.sha256).digest()
    assert key_commitment(key) == expected and len(expected) == 32


def test_text_message_cap():
    assert text_message("hi") == {"type": "text", "text": "hi"}
    assert text_message("x" * 16000)["text"] == "x" * 16000
    with pytest.raises(ProtocolError) as exc:
        text_message("x" * 16001)
    assert exc.value.code == "too_large"


# --- keys --------------------------------------------------------------------------------


def test_generated_keys_are_canonical_and_distinct():
    keys = generated_keys()
    assert keys.enc_private.size_in_bits() == 2048 and keys.enc_private.e == 65537
    assert keys.enc_kid != keys.sig_kid
    assert import_public_key(keys.enc_spki) == keys.enc_public
    assert compute_kid(keys.sig_spki) == keys.sig_kid
    with pytest.raises(ValueError):
        generate_device_keys(1024)


def test_fixed_keys_match_stored_spki_and_kids():
    stored = load("keys.json")
    for name, keys in fixed_keys().items():
        assert b64encode(keys.enc_spki) == stored[name]["enc_spki"]
        assert keys.enc_kid == stored[name]["enc_kid"] == compute_kid(keys.enc_spki)
        assert keys.sig_kid == stored[name]["sig_kid"]


def test_import_public_key_refuses_other_encodings():
    key = fixed_keys()["alice"].enc_private
    spki = key.public_key().export_key("DER")
    assert import_public_key(spki).n == key.n
    refused = [
        key.public_key().export_key("PEM"),  # PEM
        DerSequence([key.n, key.e]).encode(),  # PKCS#1 RSAPublicKey
        key.export_key("DER"),  # private key
        key.export_key("DER", pkcs=8),
        spki + b"\x00",  # trailing garbage
        spki[:-1],
        b"",
        b"\x30" * 2000,
        spki.decode("latin-1"),  # not bytes
    ]
    # A non-minimal DER length (long form for a short length) is the same key, not canonical.
    assert spki[1] == 0x82
    refused.append(b"\x30\x83\x00" + spki[2:])
    for encoding in refused:
        with pytest.raises(ProtocolError) as exc:
            import_public_key(encoding)
        assert exc.value.code == "invalid_key"


@pytest.mark.parametrize(
    "make",
    [
        lambda: RSA.generate(1024),
        lambda: RSA.generate(2048, e=3),
        lambda: RSA.construct((RSA.generate(1024).n * 2**1000 + 1, 65537), consistency_check=False),
    ],
    ids=["1024-bit", "e=3", "odd-size"],
)
def test_import_public_key_refuses_size_and_exponent(make):
    with pytest.raises(ProtocolError) as exc:
        import_public_key(make().public_key().export_key("DER"))
    assert exc.value.code == "invalid_key"


def test_import_public_key_refuses_non_rsa():
    spki = ECC.generate(curve="P-256").public_key().export_key(format="DER")
    with pytest.raises(ProtocolError):
        import_public_key(spki)


def test_device_keys_from_pkcs8():
    alice = fixed_keys()["alice"]
    enc, sig = (k.export_key("DER", pkcs=8) for k in (alice.enc_private, alice.sig_private))
    assert device_keys_from_pkcs8(enc, sig) == alice
    for pair in [(enc, enc), (alice.enc_spki, sig), (b"junk", sig)]:
        with pytest.raises(ProtocolError) as exc:
            device_keys_from_pkcs8(*pair)
        assert exc.value.code == "invalid_key"


# --- device proof ------------------------------------------------------------------------


def test_device_proof_round_trip_and_binding():
    keys = fixed_keys()["alice"]
    proof = sign_device_proof(keys, 1)
    assert device_proof_message(1, keys.enc_kid, keys.sig_kid) == (
        f"e2ee-chat/v1/device|1|{keys.enc_kid}|{keys.sig_kid}".encode()
    )
    assert verify_device_proof(keys.sig_public, 1, keys.enc_kid, keys.sig_kid, proof)
    other = fixed_keys()["bob"]
    assert not verify_device_proof(keys.sig_public, 2, keys.enc_kid, keys.sig_kid, proof)
    assert not verify_device_proof(keys.sig_public, 1, other.enc_kid, keys.sig_kid, proof)
    assert not verify_device_proof(other.sig_public, 1, keys.enc_kid, keys.sig_kid, proof)
    assert not verify_device_proof(keys.sig_public, 1, keys.enc_kid, keys.sig_kid, flip(proof))
    with pytest.raises(ProtocolError):
        verify_device_proof(keys.sig_public, 1, keys.enc_kid, keys.sig_kid, proof + "\n")
    with pytest.raises(ProtocolError):
        verify_device_proof(keys.sig_public, 1, keys.enc_kid.upper(), keys.sig_kid, proof)


# --- envelopes ---------------------------------------------------------------------------


def context(**overrides):
    return {"conversation_id": 7, "sender_id": 1, "client_msg_id": CMID, **overrides}


def sealed(plaintext=None):
    alice, bob = fixed_keys()["alice"], fixed_keys()["bob"]
    return seal_envelope(
        plaintext or text_message("hello ✓"),
        **context(),
        sender_keys=alice,
        recipient_keys={alice.enc_kid: alice.enc_public, bob.enc_kid: bob.enc_public},
    )


def open_as(name, envelope, **overrides):
    return open_envelope(
        envelope,
        **context(**overrides),
        device_keys=fixed_keys()[name],
        sig_public=fixed_keys()["alice"].sig_public,
    )


def test_seal_open_round_trip_for_every_recipient():
    envelope = sealed()
    assert list(envelope) == ["v", "iv", "ct", "kc", "keys", "sig_kid", "sig"]
    assert envelope["sig_kid"] == fixed_keys()["alice"].sig_kid
    validate_envelope(envelope)
    for name in ("alice", "bob"):
        assert open_as(name, envelope) == {"type": "text", "text": "hello ✓"}


def test_open_accepts_keys_cut_down_to_own_entry():
    envelope = sealed()
    bob_kid = fixed_keys()["bob"].enc_kid
    cut = {**envelope, "keys": {bob_kid: envelope["keys"][bob_kid]}}
    assert open_as("bob", cut)["text"] == "hello ✓"


def test_fresh_key_and_iv_per_message():
    first, second = sealed(), sealed()
    assert first["iv"] != second["iv"] and first["kc"] != second["kc"]


def test_seal_refuses_mismatched_recipient_kid():
    alice, bob = fixed_keys()["alice"], fixed_keys()["bob"]
    with pytest.raises(ProtocolError) as exc:
        seal_envelope(
            text_message("x"),
            **context(),
            sender_keys=alice,
            recipient_keys={alice.enc_kid: bob.enc_public},
        )
    assert exc.value.code == "invalid_key"


def test_verify_envelope_signature():
    envelope = sealed()
    alice, bob = fixed_keys()["alice"], fixed_keys()["bob"]
    assert verify_envelope_signature(envelope, **context(), sig_public=alice.sig_public)
    assert not verify_envelope_signature(
        envelope, **context(sender_id=2), sig_public=alice.sig_public
    )
    assert not verify_envelope_signature(envelope, **context(), sig_public=bob.sig_public)
    # Signed by alice's key but naming bob's kid: the sig_kid must be the verifying key's.
    renamed = {**envelope, "sig_kid": bob.sig_kid}
    assert not verify_envelope_signature(renamed, **context(), sig_public=alice.sig_public)


TAMPERS = {
    "iv": lambda env: {**env, "iv": flip(env["iv"])},
    "ct": lambda env: {**env, "ct": flip(env["ct"])},
    "ct_tag": lambda env: {**env, "ct": flip(env["ct"], -1)},
    "kc": lambda env: {**env, "kc": flip(env["kc"])},
    "sig": lambda env: {**env, "sig": flip(env["sig"], 3)},
    "sig_kid": lambda env: {**env, "sig_kid": fixed_keys()["bob"].sig_kid},
    "wrapped_key": lambda env: {
        **env,
        "keys": {k: flip(v, 7) for k, v in env["keys"].items()},
    },
    "missing_own_key": lambda env: {
        **env,
        "keys": {fixed_keys()["alice"].enc_kid: env["keys"][fixed_keys()["alice"].enc_kid]},
    },
    "extra_field": lambda env: {**env, "x": 1},
    "missing_field": lambda env: {k: v for k, v in env.items() if k != "kc"},
    "version": lambda env: {**env, "v": 2},
    "non_canonical_b64": lambda env: {**env, "ct": env["ct"].rstrip("=")},
}


@pytest.mark.parametrize("tamper", TAMPERS, ids=list(TAMPERS))
def test_every_envelope_tamper_is_rejected(tamper):
    envelope = TAMPERS[tamper](sealed())
    with pytest.raises(OpenError):
        open_as("bob", envelope)


@pytest.mark.parametrize(
    "overrides",
    [{"conversation_id": 8}, {"sender_id": 2}, {"client_msg_id": CMID[:-1] + "f"}],
    ids=["conversation_id", "sender_id", "client_msg_id"],
)
def test_every_aad_field_is_bound(overrides):
    with pytest.raises(OpenError):
        open_as("bob", sealed(), **overrides)


def test_commitment_rejects_a_consistent_key_swap():
    """A sender re-encrypting one recipient's K' is caught by kc before decryption."""
    bob = fixed_keys()["bob"]
    envelope = sealed()
    other = PKCS1_OAEP.new(bob.enc_public, hashAlgo=SHA256).encrypt(b"\x01" * 32)
    swapped = {**envelope, "keys": {**envelope["keys"], bob.enc_kid: b64encode(other)}}
    with pytest.raises(OpenError, match="commitment"):
        open_as("bob", swapped)
    assert open_as("alice", swapped)["type"] == "text"


@pytest.mark.parametrize("raw", [b"[1]", b'"s"', b"\xff\xfe", b"{bad", b'{"a":NaN}'])
def test_open_refuses_non_object_plaintext(raw):
    alice, bob = fixed_keys()["alice"], fixed_keys()["bob"]
    envelope = sealed()
    content_key = bytes(32)
    iv = b64decode(envelope["iv"])
    cipher = AES.new(content_key, AES.MODE_GCM, nonce=iv)
    cipher.update(message_aad(7, 1, CMID).encode())
    body, tag = cipher.encrypt_and_digest(raw)
    forged = seal_envelope(
        {},
        **context(),
        sender_keys=alice,
        recipient_keys={bob.enc_kid: bob.enc_public},
        content_key=content_key,
        iv=iv,
    )
    forged["ct"] = b64encode(body + tag)
    message = signed_string(message_aad(7, 1, CMID), forged["iv"], forged["ct"], forged["kc"])
    forged["sig"] = b64encode(pss.new(alice.sig_private).sign(SHA256.new(message)))
    with pytest.raises(OpenError, match="plaintext"):
        open_as("bob", forged)


# --- known-answer vectors ----------------------------------------------------------------


def test_vector_is_reproduced_deterministically():
    vector = load("envelope.json")
    keys = fixed_keys()
    envelope = seal_envelope(
        vector["plaintext"],
        **vector["context"],
        sender_keys=keys[vector["sender"]],
        recipient_keys={keys[n].enc_kid: keys[n].enc_public for n in vector["recipients"]},
        content_key=b64decode(vector["content_key"]),
        iv=b64decode(vector["iv"]),
    )
    assert {k: envelope[k] for k in ("iv", "ct", "kc")} == vector["deterministic"]


@pytest.mark.parametrize("name", ["alice", "bob"])
def test_vector_opens(name):
    vector = load("envelope.json")
    keys = fixed_keys()
    plaintext = open_envelope(
        vector["envelope"],
        **vector["context"],
        device_keys=keys[name],
        sig_public=keys[vector["sender"]].sig_public,
    )
    assert plaintext == vector["plaintext"]


def test_vector_tampers_are_rejected():
    vector = load("envelope.json")
    keys = fixed_keys()
    assert {t["name"] for t in vector["tampered"]} >= {
        "iv",
        "ct",
        "kc",
        "sig",
        "wrapped_key",
        "conversation_id",
        "sender_id",
        "client_msg_id",
    }
    for case in vector["tampered"]:
        with pytest.raises(OpenError):
            open_envelope(
                case["envelope"],
                **case["context"],
                device_keys=keys["bob"],
                sig_public=keys[vector["sender"]].sig_public,
            )


def test_device_proof_vector_verifies():
    vector = load("device_proof.json")
    keys = fixed_keys()[vector["device"]]
    args = (vector["user_id"], vector["enc_kid"], vector["sig_kid"], vector["proof"])
    assert verify_device_proof(keys.sig_public, *args)
