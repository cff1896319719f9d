"""chatclient.protocol: encodings, keys, device proofs, envelopes (v2 and v1), identity keys,
certificates, upgrade signatures, link codes, identity wraps, safety numbers, history rewraps
and the known-answer vectors of each."""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import re
import uuid
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest
from Crypto.Cipher import AES, PKCS1_OAEP
from Crypto.Hash import SHA256
from Crypto.PublicKey import ECC, RSA
from Crypto.Signature import pss
from Crypto.Util.asn1 import DerSequence

from chatclient import protocol
from chatclient.protocol import (
    OpenError,
    ProtocolError,
    b64decode,
    b64encode,
    check_trust_state,
    compute_kid,
    device_keys_from_pkcs8,
    device_proof_message,
    envelope_aad,
    format_link_code,
    format_safety_number,
    generate_device_keys,
    generate_identity_key,
    identity_key_from_pkcs8,
    identity_proof_message,
    import_public_key,
    is_client_msg_id,
    is_counter,
    is_head,
    is_uuid4,
    key_commitment,
    link_code,
    make_id_wrap,
    message_aad,
    message_aad_v1,
    new_client_msg_id,
    open_envelope,
    open_id_wrap,
    rewrap_content_key,
    safety_digits,
    safety_number,
    same_link_code,
    seal_envelope,
    seal_envelope_v1,
    sign_device_cert,
    sign_device_proof,
    sign_identity_proof,
    sign_identity_upgrade,
    signed_string,
    text_message,
    validate_envelope,
    verify_device_cert,
    verify_device_proof,
    verify_envelope_signature,
    verify_identity_proof,
    verify_identity_upgrade,
)
from tests.vectors.known import fixed_keys, load

CMID = "0f8fad5b-d9cb-469f-a165-70867728950e"
HEAD = "ab" * 32


@cache
def generated_keys():
    return generate_device_keys(2048)


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


def test_gids_counters_and_heads():
    assert is_uuid4(str(uuid.uuid4())) and is_uuid4(CMID)
    for bad in [str(uuid.uuid1()), CMID.upper(), CMID[:14] + "5" + CMID[15:], 7, None]:
        assert not is_uuid4(bad)
    assert is_counter(1) and is_counter(2**53 - 1)
    for bad in [0, -1, 2**53, 1.0, True, "1", None]:
        assert not is_counter(bad)
    assert is_head("") and is_head(HEAD)
    for bad in [HEAD.upper(), HEAD[:-1], None, 0, " "]:
        assert not is_head(bad)


def test_message_aad_and_signed_string():
    kid = "c" * 64
    aad = message_aad(7, 1, CMID, kid, 17, HEAD)
    assert aad == f"e2ee-chat/v2/msg|7|1|{CMID}|{kid}|17|{HEAD}"
    assert message_aad(7, 1, CMID, kid, 1, "") == f"e2ee-chat/v2/msg|7|1|{CMID}|{kid}|1|"
    assert message_aad_v1(7, 1, CMID) == f"e2ee-chat/v1/msg|7|1|{CMID}"
    assert signed_string(aad, "aXY=", "Y3Q=", "a2M=") == f"{aad}|aXY=|Y3Q=|a2M=".encode()
    for args in [
        ("7", 1, CMID, kid, 1, ""),
        (7, True, CMID, kid, 1, ""),
        (7, 1, CMID.upper(), kid, 1, ""),
        (7, 1, CMID, kid.upper(), 1, ""),
        (7, 1, CMID, kid, 0, ""),
        (7, 1, CMID, kid, 1, "x"),
    ]:
        with pytest.raises(ProtocolError):
            message_aad(*args)
    for args in [("7", 1, CMID), (7, True, CMID), (7, 1, CMID.upper())]:
        with pytest.raises(ProtocolError):
            message_aad_v1(*args)
    envelope = {"v": 2, "sig_kid": kid, "n": 17, "head": HEAD}
    assert envelope_aad(envelope, 7, 1, CMID) == aad
    assert envelope_aad({"v": 1}, 7, 1, CMID) == message_aad_v1(7, 1, CMID)


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
    enc, sig, id_ = (
        k.export_key("DER", pkcs=8)
        for k in (alice.enc_private, alice.sig_private, alice.id_private)
    )
    assert device_keys_from_pkcs8(enc, sig, id_) == alice
    v1 = device_keys_from_pkcs8(enc, sig)
    assert v1 == replace(alice, id_private=None)
    assert (v1.id_private, v1.id_public, v1.id_spki, v1.id_kid) == (None, None, None, None)
    for keys in [
        (enc, enc),
        (alice.enc_spki, sig),
        (b"junk", sig),
        (enc, sig, sig),
        (enc, sig, enc),
    ]:
        with pytest.raises(ProtocolError) as exc:
            device_keys_from_pkcs8(*keys)
        assert exc.value.code == "invalid_key"


def test_identity_keys():
    alice = fixed_keys()["alice"]
    assert alice.id_kid == load("keys.json")["alice"]["id_kid"] == compute_kid(alice.id_spki)
    assert alice.id_public == import_public_key(alice.id_spki)
    assert identity_key_from_pkcs8(alice.id_private.export_key("DER", pkcs=8)) == alice.id_private
    with pytest.raises(ProtocolError):
        identity_key_from_pkcs8(alice.id_spki)
    with pytest.raises(ValueError):
        generate_identity_key(1024)


def test_with_identity_holds_a_different_key():
    v1 = replace(fixed_keys()["alice"], id_private=None)
    identity = fixed_keys()["bob"].id_private
    upgraded = v1.with_identity(identity)
    assert upgraded.id_kid == fixed_keys()["bob"].id_kid
    assert (upgraded.enc_kid, upgraded.sig_kid) == (v1.enc_kid, v1.sig_kid)
    for same in (v1.sig_private, v1.enc_private):
        with pytest.raises(ProtocolError) as exc:
            v1.with_identity(same)
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


def recipients(*names):
    return {fixed_keys()[n].enc_kid: fixed_keys()[n].enc_public for n in names}


def sealed(plaintext=None, n=17, head=HEAD):
    return seal_envelope(
        plaintext or text_message("hello ✓"),
        **context(),
        n=n,
        head=head,
        sender_keys=fixed_keys()["alice"],
        recipient_keys=recipients("alice", "bob"),
    )


def sealed_v1(plaintext=None):
    return seal_envelope_v1(
        plaintext or text_message("hello ✓"),
        **context(),
        sender_keys=fixed_keys()["alice"],
        recipient_keys=recipients("alice", "bob"),
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
    assert list(envelope) == ["v", "n", "head", "iv", "ct", "kc", "keys", "sig_kid", "sig"]
    assert (envelope["v"], envelope["n"], envelope["head"]) == (2, 17, HEAD)
    assert envelope["sig_kid"] == fixed_keys()["alice"].sig_kid
    validate_envelope(envelope)
    for name in ("alice", "bob"):
        assert open_as(name, envelope) == {"type": "text", "text": "hello ✓"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 0),
        ("n", 2**53),
        ("n", "17"),
        ("n", 1.5),
        ("n", True),
        ("head", "x"),
        ("head", HEAD.upper()),
        ("head", None),
        ("v", 3),
        ("v", "2"),
        ("v", 1),
    ],
)
def test_validate_envelope_checks_v_n_and_head_by_themselves(field, value):
    with pytest.raises(ProtocolError) as exc:
        validate_envelope({**sealed(), field: value})
    assert exc.value.code == "bad_request"


def test_direct_envelope_with_empty_head_opens():
    envelope = sealed(n=1, head="")
    assert open_as("bob", envelope)["text"] == "hello ✓"


def test_seal_refuses_a_bad_counter_or_head():
    for n, head in [(0, ""), (2**53, ""), ("1", ""), (1, "x"), (1, HEAD.upper()), (1, None)]:
        with pytest.raises(ProtocolError) as exc:
            sealed(n=n, head=head)
        assert exc.value.code == "bad_request"


def test_v1_envelope_still_opens():
    envelope = sealed_v1()
    assert list(envelope) == ["v", "iv", "ct", "kc", "keys", "sig_kid", "sig"]
    validate_envelope(envelope)
    assert open_as("bob", envelope)["text"] == "hello ✓"
    alice = fixed_keys()["alice"]
    assert verify_envelope_signature(envelope, **context(), sig_public=alice.sig_public)
    # A v1 envelope's signature does not stand for a v2 one, nor the other way round.
    as_v2 = {**envelope, "v": 2, "n": 1, "head": ""}
    assert not verify_envelope_signature(as_v2, **context(), sig_public=alice.sig_public)
    v2 = sealed()
    as_v1 = {k: v for k, v in v2.items() if k not in ("n", "head")} | {"v": 1}
    assert not verify_envelope_signature(as_v1, **context(), sig_public=alice.sig_public)


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
            n=1,
            head="",
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
    "missing_n": lambda env: {k: v for k, v in env.items() if k != "n"},
    "version": lambda env: {**env, "v": 1},
    "n": lambda env: {**env, "n": env["n"] + 1},
    "n_float": lambda env: {**env, "n": float(env["n"])},
    "head": lambda env: {**env, "head": ""},
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
    alice = fixed_keys()["alice"]
    envelope = sealed()
    content_key = bytes(32)
    iv = b64decode(envelope["iv"])
    aad = message_aad(7, 1, CMID, alice.sig_kid, 1, "")
    cipher = AES.new(content_key, AES.MODE_GCM, nonce=iv)
    cipher.update(aad.encode())
    body, tag = cipher.encrypt_and_digest(raw)
    forged = seal_envelope(
        {},
        **context(),
        n=1,
        head="",
        sender_keys=alice,
        recipient_keys=recipients("bob"),
        content_key=content_key,
        iv=iv,
    )
    forged["ct"] = b64encode(body + tag)
    message = signed_string(aad, forged["iv"], forged["ct"], forged["kc"])
    forged["sig"] = b64encode(pss.new(alice.sig_private).sign(SHA256.new(message)))
    with pytest.raises(OpenError, match="plaintext"):
        open_as("bob", forged)


# --- history rewrap (§7.3) ---------------------------------------------------------------


def test_rewrap_gives_the_new_device_the_same_key():
    envelope = sealed()
    alice2 = fixed_keys()["alice2"]
    ek = rewrap_content_key(envelope, fixed_keys()["bob"], alice2.enc_public)
    served = {**envelope, "keys": {alice2.enc_kid: ek}}
    assert open_as("alice2", served)["text"] == "hello ✓"


def test_rewrap_refuses_what_this_device_cannot_open():
    envelope = sealed()
    target = fixed_keys()["alice2"].enc_public
    with pytest.raises(OpenError, match="no wrapped key"):
        rewrap_content_key(envelope, fixed_keys()["alice2"], target)
    bob_kid = fixed_keys()["bob"].enc_kid
    broken = {**envelope, "keys": {**envelope["keys"], bob_kid: flip(envelope["keys"][bob_kid], 9)}}
    with pytest.raises(OpenError):
        rewrap_content_key(broken, fixed_keys()["bob"], target)
    with pytest.raises(OpenError):
        rewrap_content_key({**envelope, "kc": flip(envelope["kc"])}, fixed_keys()["bob"], target)
    with pytest.raises(OpenError):
        rewrap_content_key({**envelope, "x": 1}, fixed_keys()["bob"], target)


# --- identity proof, certificates, upgrade signatures (§1, §7) ----------------------------


def test_identity_proof_round_trip_and_binding():
    alice, bob = fixed_keys()["alice"], fixed_keys()["bob"]
    proof = sign_identity_proof(alice.id_private, 1)
    assert verify_identity_proof(alice.id_public, 1, proof)
    assert not verify_identity_proof(alice.id_public, 2, proof)
    assert not verify_identity_proof(bob.id_public, 1, proof)
    assert not verify_identity_proof(alice.id_public, 1, flip(proof))
    with pytest.raises(ProtocolError):
        verify_identity_proof(alice.id_public, 1, proof + " ")


def test_device_cert_round_trip_and_binding():
    alice, bob = fixed_keys()["alice"], fixed_keys()["bob"]
    cert = sign_device_cert(alice.id_private, 1, bob.enc_kid, bob.sig_kid)
    assert verify_device_cert(alice.id_public, 1, bob.enc_kid, bob.sig_kid, cert)
    assert not verify_device_cert(alice.id_public, 2, bob.enc_kid, bob.sig_kid, cert)
    assert not verify_device_cert(bob.id_public, 1, bob.enc_kid, bob.sig_kid, cert)
    assert not verify_device_cert(alice.id_public, 1, bob.sig_kid, bob.enc_kid, cert)
    with pytest.raises(ProtocolError):
        verify_device_cert(alice.id_public, 1, "x", bob.sig_kid, cert)


def test_identity_upgrade_round_trip_and_binding():
    alice, bob = fixed_keys()["alice"], fixed_keys()["bob"]
    upgrade = sign_identity_upgrade(alice, 1, bob.id_kid)
    assert upgrade == {"sig_kid": alice.sig_kid, "sig": upgrade["sig"]}
    assert verify_identity_upgrade(alice.sig_public, 1, bob.id_kid, upgrade)
    assert not verify_identity_upgrade(alice.sig_public, 1, alice.id_kid, upgrade)
    assert not verify_identity_upgrade(bob.sig_public, 1, bob.id_kid, upgrade)
    with pytest.raises(ProtocolError):
        verify_identity_upgrade(alice.sig_public, 1, bob.id_kid, {**upgrade, "x": 1})


# --- link codes, id_wrap, trust state (§7.2) ---------------------------------------------


def test_link_code_format_and_comparison():
    alice, alice2 = fixed_keys()["alice"], fixed_keys()["alice2"]
    code = link_code(1, alice.id_kid, alice2.enc_kid, alice2.sig_kid)
    message = f"e2ee-chat/v2/link-code|1|{alice.id_kid}|{alice2.enc_kid}|{alice2.sig_kid}"
    assert code == hashlib.sha256(message.encode()).hexdigest()[:20]
    assert format_link_code(code) == " ".join(code[i : i + 4] for i in range(0, 20, 4))
    assert same_link_code(format_link_code(code).upper(), code)
    assert not same_link_code(code[:-1], code) and not same_link_code(None, code)


def make_wrap(trust=None, **overrides):
    alice, alice2 = fixed_keys()["alice"], fixed_keys()["alice2"]
    trust = {"identities": {"2": {"id_kid": fixed_keys()["bob"].id_kid, "verified": True}}}
    target = {"user_id": 1, "enc_public": alice2.enc_public, "sig_kid": alice2.sig_kid}
    return make_id_wrap(alice.id_private, trust, **{**target, **overrides}), trust


def test_id_wrap_round_trip():
    wrap, trust = make_wrap()
    assert set(wrap) == {"ek", "iv", "ct"} and len(b64decode(wrap["iv"])) == 12
    identity, opened = open_id_wrap(wrap, user_id=1, device_keys=fixed_keys()["alice2"])
    assert identity == fixed_keys()["alice"].id_private and opened == trust
    assert make_wrap()[0]["ct"] != wrap["ct"]  # fresh wrap key and iv


def test_id_wrap_binds_the_user_and_the_new_devices_kids():
    wrap, _ = make_wrap()
    alice2, bob = fixed_keys()["alice2"], fixed_keys()["bob"]
    with pytest.raises(OpenError):
        open_id_wrap(wrap, user_id=2, device_keys=alice2)
    with pytest.raises(OpenError):
        open_id_wrap(wrap, user_id=1, device_keys=replace(alice2, sig_private=bob.sig_private))
    with pytest.raises(OpenError):
        open_id_wrap(wrap, user_id=1, device_keys=bob)


def test_make_id_wrap_checks_its_inputs():
    alice = fixed_keys()["alice"]
    with pytest.raises(ProtocolError):
        make_id_wrap(
            alice.id_private,
            {"identities": {"x": {}}},
            user_id=1,
            enc_public=alice.enc_public,
            sig_kid=alice.sig_kid,
        )
    with pytest.raises(ValueError):
        make_wrap(wrap_key=bytes(16))


def test_trust_state_keys_are_ascii_user_ids():
    entry = {"id_kid": "a" * 64, "verified": False}
    assert check_trust_state({"identities": {"12": entry}, "other": 1})
    for key in ["\u0661", "\u00b2", "012", "0", "-1", " 1"]:
        with pytest.raises(ProtocolError):
            check_trust_state({"identities": {key: entry}})


# --- safety numbers (§7.4) ----------------------------------------------------------------


def test_safety_number_digits_and_order():
    kid_a, kid_b = fixed_keys()["alice"].id_kid, fixed_keys()["bob"].id_kid
    digest = hashlib.sha256(f"e2ee-chat/v2/safety|1|{kid_a}".encode()).digest()
    expected = "".join(
        str(int.from_bytes(digest[i : i + 5], "big") % 100000).zfill(5) for i in range(0, 30, 5)
    )
    assert safety_digits(1, kid_a) == expected
    number = safety_number(2, kid_b, 1, kid_a)
    assert number == expected + safety_digits(2, kid_b) == safety_number(1, kid_a, 2, kid_b)
    assert safety_number(10, kid_a, 9, kid_b).startswith(safety_digits(9, kid_b))
    assert format_safety_number(number).count(" ") == 11 and len(number) == 60


# --- known-answer vectors ----------------------------------------------------------------


def vector_recipients(vector):
    return {fixed_keys()[n].enc_kid: fixed_keys()[n].enc_public for n in vector["recipients"]}


def test_v1_vector_is_reproduced_deterministically():
    vector = load("envelope_v1.json")
    envelope = seal_envelope_v1(
        vector["plaintext"],
        **vector["context"],
        sender_keys=fixed_keys()[vector["sender"]],
        recipient_keys=vector_recipients(vector),
        content_key=b64decode(vector["content_key"]),
        iv=b64decode(vector["iv"]),
    )
    assert {k: envelope[k] for k in ("iv", "ct", "kc")} == vector["deterministic"]


@pytest.mark.parametrize("file", ["envelope_v1.json", "envelope_v2.json"])
@pytest.mark.parametrize("name", ["alice", "bob"])
def test_envelope_vectors_open(file, name):
    vector = load(file)
    keys = fixed_keys()
    sig_public = keys[vector["sender"]].sig_public
    plaintext = open_envelope(
        vector["envelope"], **vector["context"], device_keys=keys[name], sig_public=sig_public
    )
    assert plaintext == vector["plaintext"]
    assert verify_envelope_signature(vector["envelope"], **vector["context"], sig_public=sig_public)


def test_v2_vector_is_reproduced_deterministically():
    vector = load("envelope_v2.json")
    alice = fixed_keys()[vector["sender"]]
    assert (
        message_aad(**vector["context"], sig_kid=alice.sig_kid, n=17, head=vector["head"])
        == (vector["aad"])
    )
    envelope = seal_envelope(
        vector["plaintext"],
        **vector["context"],
        n=vector["n"],
        head=vector["head"],
        sender_keys=alice,
        recipient_keys=vector_recipients(vector),
        content_key=b64decode(vector["content_key"]),
        iv=b64decode(vector["iv"]),
    )
    assert {k: envelope[k] for k in ("iv", "ct", "kc")} == vector["deterministic"]
    assert (envelope["n"], envelope["head"]) == (vector["envelope"]["n"], vector["head"])


def test_v2_vector_direct_envelope_opens():
    vector = load("envelope_v2.json")
    direct = vector["direct"]
    assert direct["envelope"]["head"] == ""
    plaintext = open_envelope(
        direct["envelope"],
        **direct["context"],
        device_keys=fixed_keys()["bob"],
        sig_public=fixed_keys()["alice"].sig_public,
    )
    assert plaintext == direct["plaintext"]


@pytest.mark.parametrize("file", ["envelope_v1.json", "envelope_v2.json"])
def test_envelope_vector_tampers_are_rejected(file):
    vector = load(file)
    keys = fixed_keys()
    names = {t["name"] for t in vector["tampered"]}
    assert names >= {"iv", "ct", "kc", "sig", "wrapped_key", "conversation_id", "sender_id"}
    if file == "envelope_v2.json":
        assert names >= {"n", "head", "missing_n", "missing_head", "version_1", "n_string"}
    for case in vector["tampered"]:
        with pytest.raises(OpenError):
            open_envelope(
                case["envelope"],
                **case["context"],
                device_keys=keys["bob"],
                sig_public=keys[vector["sender"]].sig_public,
            )


def test_history_rewrap_vector():
    vector = load("history_rewrap.json")
    keys = fixed_keys()
    recipient = keys[vector["recipient"]]
    sig_public = keys[vector["sender"]].sig_public
    for envelope in (
        vector["served"],
        {**vector["envelope"], "keys": {recipient.enc_kid: vector["ek"]}},
    ):
        plaintext = open_envelope(
            envelope, **vector["context"], device_keys=recipient, sig_public=sig_public
        )
        assert plaintext == vector["plaintext"]
    for case in vector["tampered"]:
        served = {**vector["envelope"], "keys": {recipient.enc_kid: case["ek"]}}
        with pytest.raises(OpenError):
            open_envelope(served, **vector["context"], device_keys=recipient, sig_public=sig_public)
    # Rewrapping again from the vector's envelope gives another wrap of the same key.
    again = rewrap_content_key(
        vector["envelope"], keys[vector["rewrapped_by"]], recipient.enc_public
    )
    served = {**vector["envelope"], "keys": {recipient.enc_kid: again}}
    assert (
        open_envelope(served, **vector["context"], device_keys=recipient, sig_public=sig_public)
        == vector["plaintext"]
    )


def verdict(fn, *args):
    try:
        return fn(*args)
    except ProtocolError as exc:
        return exc.code


def test_identity_proof_vector():
    vector = load("identity_proof.json")
    assert identity_proof_message(1, vector["id_kid"]).decode() == vector["message"]
    assert [case["expect"] for case in vector["cases"]].count(True) == 1
    for case in vector["cases"]:
        got = verdict(
            verify_identity_proof,
            fixed_keys()[case["identity"]].id_public,
            case["user_id"],
            case["proof"],
        )
        assert got == case["expect"], case["name"]


def test_device_cert_vector():
    vector = load("device_cert.json")
    keys = fixed_keys()
    owners = {"alice": "alice", "alice2": "alice", "bob": "bob"}
    for device, cert in vector["certs"].items():
        user_id = load("keys.json")[device]["user_id"]
        id_public = keys[owners[device]].id_public
        assert verify_device_cert(
            id_public, user_id, keys[device].enc_kid, keys[device].sig_kid, cert
        )
    for case in vector["cases"]:
        got = verdict(
            verify_device_cert,
            keys[case["identity"]].id_public,
            case["user_id"],
            case["enc_kid"],
            case["sig_kid"],
            case["cert"],
        )
        assert got == case["expect"], case["name"]


def test_identity_upgrade_vector():
    vector = load("identity_upgrade.json")
    for case in vector["cases"]:
        got = verdict(
            verify_identity_upgrade,
            fixed_keys()[case["device"]].sig_public,
            case["user_id"],
            case["id_kid"],
            case["upgrade"],
        )
        assert got == case["expect"], case["name"]


def test_link_code_vector():
    vector = load("link_code.json")
    for case in vector["cases"]:
        code = link_code(case["user_id"], case["id_kid"], case["enc_kid"], case["sig_kid"])
        assert (code, format_link_code(code)) == (case["code"], case["formatted"]), case["name"]
    for case in vector["same"]:
        assert same_link_code(case["typed"], case["code"]) is case["expect"], case["typed"]


def test_id_wrap_vector_opens_and_is_reproduced():
    vector = load("id_wrap.json")
    keys = fixed_keys()
    identity, trust = open_id_wrap(
        vector["id_wrap"], user_id=vector["user_id"], device_keys=keys[vector["recipient"]]
    )
    assert compute_kid(identity.public_key().export_key("DER")) == vector["id_kid"]
    assert identity == keys[vector["approver"]].id_private and trust == vector["trust"]
    again = make_id_wrap(
        keys[vector["approver"]].id_private,
        vector["trust"],
        user_id=vector["user_id"],
        enc_public=keys[vector["recipient"]].enc_public,
        sig_kid=keys[vector["recipient"]].sig_kid,
        wrap_key=b64decode(vector["wrap_key"]),
        iv=b64decode(vector["iv"]),
    )
    assert again["ct"] == vector["deterministic_ct"] == vector["id_wrap"]["ct"]


def test_id_wrap_vector_tampers_are_refused():
    vector = load("id_wrap.json")
    stored = load("keys.json")
    assert len(vector["tampered"]) >= 15
    for case in vector["tampered"]:
        names = case.get("open_as", {"enc": vector["recipient"], "sig": vector["recipient"]})
        device = device_keys_from_pkcs8(
            b64decode(stored[names["enc"]]["enc_pkcs8"]),
            b64decode(stored[names["sig"]]["sig_pkcs8"]),
        )
        with pytest.raises(OpenError):
            open_id_wrap(
                case["id_wrap"], user_id=case.get("user_id", vector["user_id"]), device_keys=device
            )


def test_trust_state_vector():
    for case in load("id_wrap.json")["trust_cases"]:
        assert (verdict(check_trust_state, case["trust"]) == case["trust"]) is case["valid"], case


def test_safety_number_vector():
    for case in load("safety_number.json")["cases"]:
        assert safety_digits(case["user_a"], case["id_kid_a"]) == case["digits_a"]
        assert safety_digits(case["user_b"], case["id_kid_b"]) == case["digits_b"]
        number = safety_number(case["user_a"], case["id_kid_a"], case["user_b"], case["id_kid_b"])
        assert (number, format_safety_number(number)) == (case["number"], case["formatted"])


def test_device_proof_vector_verifies():
    vector = load("device_proof.json")
    keys = fixed_keys()[vector["device"]]
    args = (vector["user_id"], vector["enc_kid"], vector["sig_kid"], vector["proof"])
    assert verify_device_proof(keys.sig_public, *args)
    assert not verify_device_proof(fixed_keys()["bob"].sig_public, *args)


#: Where the two protocol modules differ in name, on purpose (docs/client-modules.md).
PYTHON_ONLY = {
    "import_public_key",  # JS imports a key for its use: importEncryptionKey and friends
    "MessageTooLong",  # the client's error, re-exported beside ProtocolError
    "PUBLIC_EXPONENT",  # checked inside JS's imports
    "KEY_COMMITMENT_LABEL",  # inside JS's keyCommitment
}
JS_ONLY = {
    "importEncryptionKey",
    "importSigningKey",
    "importIdentityKey",
    "hex",  # JS helpers over Uint8Array
    "sha256Hex",
    "OAEP",  # WebCrypto algorithm objects
    "PSS",
}


def test_the_browser_module_mirrors_this_one_name_for_name():
    """Every public name of chatclient.protocol is static/chat/protocol.js's export in
    camelCase (constants as they are), and the other way round, but for PYTHON_ONLY and
    JS_ONLY: a helper that one language's callers need is public in both or in neither."""

    def camel(name: str) -> str:
        return name if name.isupper() else re.sub(r"_([a-z0-9])", lambda m: m[1].upper(), name)

    python = {
        name
        for name, value in vars(protocol).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and (
            getattr(value, "__module__", "").startswith("chatclient")
            or (name.isupper() and not callable(value))
        )
    }
    source = (Path(__file__).resolve().parents[1] / "static/chat/protocol.js").read_text()
    js = set(re.findall(r"^export (?:async )?(?:function\*?|class|const|let) (\w+)", source, re.M))
    assert {camel(n) for n in python - PYTHON_ONLY} == js - JS_ONLY
    assert python >= PYTHON_ONLY and js >= JS_ONLY
