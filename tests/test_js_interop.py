"""Cross-language interop: JS (static/chat) makes keys, identities, certificates, upgrade
signatures, link codes, identity wraps, keystores (v1 and v2), envelopes (v2 and v1), a
history rewrap, a roster chain with its single-field tampers, a safety number and an
encrypted file; Python (chatclient) verifies, opens and unlocks every one, and refuses every
tamper with the error JS gave it. For attachments, JS also opens a Python-encrypted file and
refuses its tampered copies with Python's codes.

The other direction is covered by the Python-made vectors that tests/js/*.test.mjs open.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from chatclient import attachments, roster
from chatclient.keystore import WrongPassphrase, lock_keystore, unlock_keystore
from chatclient.protocol import (
    OpenError,
    b64decode,
    b64encode,
    compute_kid,
    import_public_key,
    link_code,
    open_envelope,
    open_id_wrap,
    safety_number,
    verify_device_cert,
    verify_device_proof,
    verify_envelope_signature,
    verify_identity_proof,
    verify_identity_upgrade,
)
from tests.vectors.known import fixed_keys, load, roster_signing_key

TESTS = Path(__file__).parent
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not on PATH; JS interop not run")


@cache
def js_output() -> dict:
    result = subprocess.run(
        [NODE, str(TESTS / "js" / "interop.mjs")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def py_context(context: dict) -> dict:
    return {
        "conversation_id": context["conversationId"],
        "sender_id": context["senderId"],
        "client_msg_id": context["clientMsgId"],
    }


def key_of(b64: str):
    return import_public_key(b64decode(b64))


@cache
def carol_keys():
    return unlock_keystore(js_output()["keystore"], js_output()["passphrase"])


@cache
def carol2_keys():
    return unlock_keystore(js_output()["carol2"]["keystore"], js_output()["passphrase"])


# --- keys, identity, certificates, upgrade ------------------------------------------------


def test_js_keys_are_canonical_and_proofs_verify():
    carol = js_output()["carol"]
    enc, sig, id_public = (
        key_of(carol["enc_spki"]),
        key_of(carol["sig_spki"]),
        key_of(carol["id_spki"]),
    )
    assert enc.size_in_bits() == sig.size_in_bits() == id_public.size_in_bits() == 2048
    assert compute_kid(b64decode(carol["id_spki"])) == carol["id_kid"]
    assert verify_device_proof(sig, 3, carol["enc_kid"], carol["sig_kid"], carol["proof"])
    assert verify_identity_proof(id_public, 3, carol["id_proof"])
    assert not verify_identity_proof(id_public, 1, carol["id_proof"])
    assert verify_device_cert(id_public, 3, carol["enc_kid"], carol["sig_kid"], carol["cert"])
    assert not verify_device_cert(id_public, 3, carol["sig_kid"], carol["enc_kid"], carol["cert"])
    assert verify_identity_upgrade(sig, 3, carol["id_kid"], carol["upgrade"])
    assert not verify_identity_upgrade(sig, 3, fixed_keys()["alice"].id_kid, carol["upgrade"])


def test_js_cert_by_a_python_made_identity_verifies():
    alice = fixed_keys()["alice"]
    cert = js_output()["alice_cert"]
    assert verify_device_cert(alice.id_public, 1, alice.enc_kid, alice.sig_kid, cert)
    assert not verify_device_cert(
        fixed_keys()["bob"].id_public, 1, alice.enc_kid, alice.sig_kid, cert
    )


# --- keystores ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["keystore_v1", "keystore"])
def test_js_keystores_unlock_and_relock_identically(name):
    output = js_output()
    record = output[name]
    keys = unlock_keystore(record, output["passphrase"])
    assert (keys.enc_kid, keys.sig_kid) == (output["carol"]["enc_kid"], output["carol"]["sig_kid"])
    assert keys.id_kid == (output["carol"]["id_kid"] if name == "keystore" else None)
    assert record["v"] == (2 if name == "keystore" else 1)
    relocked = lock_keystore(
        keys,
        user_id=record["user_id"],
        username=record["username"],
        device_id=record["device_id"],
        passphrase=output["passphrase"],
        iterations=record["kdf"]["iterations"],
        salt=b64decode(record["kdf"]["salt"]),
        iv=b64decode(record["iv"]),
    )
    assert relocked == record
    with pytest.raises(WrongPassphrase):
        unlock_keystore(record, "Cafe passphrase")


# --- linking ------------------------------------------------------------------------------


def test_js_link_code_cert_and_id_wrap_for_the_new_device():
    output = js_output()
    carol, carol2 = output["carol"], output["carol2"]
    assert carol2["link_code"] == link_code(
        3, carol["id_kid"], carol2["enc_kid"], carol2["sig_kid"]
    )
    id_public = key_of(carol["id_spki"])
    sig2 = key_of(carol2["sig_spki"])
    assert verify_device_proof(sig2, 3, carol2["enc_kid"], carol2["sig_kid"], carol2["proof"])
    assert verify_device_cert(id_public, 3, carol2["enc_kid"], carol2["sig_kid"], carol2["cert"])
    identity, trust = open_id_wrap(output["id_wrap"], user_id=3, device_keys=carol2_keys())
    assert compute_kid(identity.public_key().export_key("DER")) == carol["id_kid"]
    assert identity == carol_keys().id_private
    assert trust == output["trust"]
    with pytest.raises(OpenError):
        open_id_wrap(output["id_wrap"], user_id=1, device_keys=carol2_keys())
    with pytest.raises(OpenError):
        open_id_wrap(output["id_wrap"], user_id=3, device_keys=carol_keys())


def test_js_rewrap_of_the_python_vector_opens_for_the_new_device():
    vector = load("envelope_v2.json")
    served = {
        **vector["envelope"],
        "keys": {carol2_keys().enc_kid: js_output()["rewrap_for_carol2"]},
    }
    plaintext = open_envelope(
        served,
        **vector["context"],
        device_keys=carol2_keys(),
        sig_public=fixed_keys()["alice"].sig_public,
    )
    assert plaintext == vector["plaintext"]


def test_js_safety_number_matches():
    carol = js_output()["carol"]
    expected = safety_number(1, fixed_keys()["alice"].id_kid, 3, carol["id_kid"])
    assert js_output()["safety_number"] == expected


# --- envelopes ----------------------------------------------------------------------------


def test_js_v2_envelope_from_fresh_device_opens_for_every_recipient():
    output = js_output()
    message = output["from_carol"]
    context = py_context(message["context"])
    envelope = message["envelope"]
    assert (envelope["v"], envelope["n"], envelope["head"]) == (
        2,
        1,
        output["roster"]["records"][3]["hash"],
    )
    sig_public = key_of(output["carol"]["sig_spki"])
    assert verify_envelope_signature(envelope, **context, sig_public=sig_public)
    for device in (carol_keys(), fixed_keys()["alice"], fixed_keys()["bob"]):
        plaintext = open_envelope(envelope, **context, device_keys=device, sig_public=sig_public)
        assert plaintext == {"type": "text", "text": message["text"]}
    for change in ({"n": 2}, {"head": ""}, {"v": 1}):
        with pytest.raises(OpenError):
            open_envelope(
                {**envelope, **change}, **context, device_keys=carol_keys(), sig_public=sig_public
            )


def test_js_direct_envelope_opens_and_binds_aad():
    message = js_output()["from_alice"]
    context = py_context(message["context"])
    keys = fixed_keys()
    assert (message["envelope"]["n"], message["envelope"]["head"]) == (2**53 - 1, "")
    plaintext = open_envelope(
        message["envelope"], **context, device_keys=keys["bob"], sig_public=keys["alice"].sig_public
    )
    assert plaintext["text"] == message["text"]
    with pytest.raises(OpenError):
        open_envelope(
            message["envelope"],
            **{**context, "conversation_id": context["conversation_id"] + 1},
            device_keys=keys["bob"],
            sig_public=keys["alice"].sig_public,
        )


def test_js_v1_envelope_opens():
    message = js_output()["v1_from_alice"]
    assert message["envelope"]["v"] == 1 and "n" not in message["envelope"]
    plaintext = open_envelope(
        message["envelope"],
        **py_context(message["context"]),
        device_keys=fixed_keys()["bob"],
        sig_public=fixed_keys()["alice"].sig_public,
    )
    assert plaintext["text"] == message["text"]


# --- the JS-made roster chain -------------------------------------------------------------


def js_signing_key():
    chain = js_output()["roster"]
    return roster_signing_key(chain["devices"], chain["identities"])


def test_js_roster_chain_verifies_to_the_same_state():
    chain = js_output()["roster"]
    state = roster.verify_chain(chain["gid"], chain["records"], js_signing_key())
    assert state.to_json() == chain["final"]
    assert (state.members, state.owner, state.title) == ({1, 2, 5}, 1, "and by bob")
    assert state.member_at(3, chain["records"][3]["hash"])
    assert not state.member_at(3, chain["records"][4]["hash"])
    assert chain["lookups"] == 4  # one per signing device, however many records it signed
    restored = roster.RosterState.from_json(json.loads(json.dumps(chain["final"])))
    assert restored.to_json() == state.to_json()


def test_every_js_roster_tamper_is_refused_by_both_with_the_same_error():
    chain = js_output()["roster"]
    fields = {case["name"].split(".")[1] for case in chain["tampered"] if "." in case["name"]}
    assert fields >= roster.SIGNED_FIELDS
    assert len(chain["tampered"]) >= 7 * 16
    for case in chain["tampered"]:
        assert case["error"] != "ok", case["name"]
        records = chain["records"][: case["prefix"]] + case["tail"]
        with pytest.raises(roster.RosterError) as exc:
            roster.verify_chain(chain["gid"], records, js_signing_key())
        assert exc.value.code == case["error"], case["name"]


# --- attachments (§10.2) -------------------------------------------------------------------


def test_files_cross_both_ways_and_both_refuse_the_same_tampers():
    """Python encrypts a random file that JS opens (and JS refuses Python's tampered copies
    with Python's codes); JS encrypts one in pieces that Python opens."""
    data = os.urandom(150001)
    blob, encryptor = attachments.encrypt_file(data)
    meta = {
        "key": b64encode(encryptor.key),
        "prefix": b64encode(encryptor.prefix),
        "size": len(data),
        "sha256": encryptor.sha256,
    }
    chunk = attachments.FILE_CHUNK + attachments.FILE_TAG
    tampered = {
        "swapped": blob[chunk : 2 * chunk] + blob[:chunk] + blob[2 * chunk :],
        "truncated": blob[: 2 * chunk],
        "byte_added": blob + b"\0",
        "bit_flipped": blob[:5] + bytes([blob[5] ^ 1]) + blob[6:],
    }
    expected = {}
    for name, bad in tampered.items():
        with pytest.raises(attachments.FileRefused) as exc:
            attachments.decrypt_file(meta, bad)
        expected[name] = exc.value.code
    request = {
        "file": meta,
        "blob": b64encode(blob),
        "tampered": {name: b64encode(bad) for name, bad in tampered.items()},
    }
    result = subprocess.run(
        [NODE, str(TESTS / "js" / "attachments_interop.mjs")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["opened_sha256"] == hashlib.sha256(data).hexdigest()
    assert output["refused"] == expected
    assert set(expected.values()) == {"bad_chunk", "bad_length"}

    payload = output["payload"]
    meta = attachments.validate_file_payload(payload)
    assert (payload["text"], meta["name"]) == ("a caption from JS", "from JS ✓.bin")
    js_blob = b64decode(output["blob"])
    assert len(js_blob) == attachments.blob_size(meta["size"])
    assert attachments.decrypt_file(meta, js_blob) == b64decode(output["plaintext"])
    with pytest.raises(attachments.FileRefused) as exc:
        attachments.decrypt_file(meta, js_blob[:-1])
    assert exc.value.code == "bad_length"
