"""Cross-language interop: JS (static/chat) seals and locks, Python (chatclient) opens and unlocks.

The other direction is covered by the Python-made vectors that tests/js/*.test.mjs open.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from chatclient.keystore import WrongPassphrase, lock_keystore, unlock_keystore
from chatclient.protocol import (
    DeviceKeys,
    OpenError,
    b64decode,
    device_keys_from_pkcs8,
    import_public_key,
    open_envelope,
    verify_device_proof,
    verify_envelope_signature,
)

TESTS = Path(__file__).parent
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not on PATH; JS interop not run")


@cache
def fixed_keys() -> dict[str, DeviceKeys]:
    stored = json.loads((TESTS / "vectors" / "keys.json").read_text())
    return {
        name: device_keys_from_pkcs8(b64decode(entry["enc_pkcs8"]), b64decode(entry["sig_pkcs8"]))
        for name, entry in stored.items()
    }


@cache
def js_output() -> dict:
    result = subprocess.run(
        [NODE, str(TESTS / "js" / "interop.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def py_context(context: dict) -> dict:
    return {
        "conversation_id": context["conversationId"],
        "sender_id": context["senderId"],
        "client_msg_id": context["clientMsgId"],
    }


def test_js_keys_are_canonical_and_proof_verifies():
    carol = js_output()["carol"]
    enc = import_public_key(b64decode(carol["enc_spki"]))
    sig = import_public_key(b64decode(carol["sig_spki"]))
    assert enc.size_in_bits() == sig.size_in_bits() == 2048
    assert verify_device_proof(
        sig, carol["user_id"], carol["enc_kid"], carol["sig_kid"], carol["proof"]
    )


def test_js_keystore_unlocks_and_relocks_identically():
    output = js_output()
    record = output["keystore"]
    keys = unlock_keystore(record, output["passphrase"])
    assert (keys.enc_kid, keys.sig_kid) == (output["carol"]["enc_kid"], output["carol"]["sig_kid"])
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


def test_js_envelope_from_fresh_device_opens_for_every_recipient():
    output = js_output()
    message = output["from_carol"]
    context = py_context(message["context"])
    sig_public = import_public_key(b64decode(output["carol"]["sig_spki"]))
    carol = unlock_keystore(output["keystore"], output["passphrase"])
    assert verify_envelope_signature(message["envelope"], **context, sig_public=sig_public)
    for device in (carol, fixed_keys()["alice"], fixed_keys()["bob"]):
        plaintext = open_envelope(
            message["envelope"], **context, device_keys=device, sig_public=sig_public
        )
        assert plaintext == {"type": "text", "text": message["text"]}


def test_js_envelope_from_fixed_device_opens_and_binds_aad():
    message = js_output()["from_alice"]
    context = py_context(message["context"])
    keys = fixed_keys()
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
