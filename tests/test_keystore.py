"""chatclient.keystore: lock/unlock, NFC passphrases, bounds, kid checks and the vector."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from chatclient.keystore import (
    KeystoreError,
    WrongPassphrase,
    derive_kek,
    lock_keystore,
    unlock_keystore,
)
from chatclient.protocol import DeviceKeys, b64decode, b64encode, device_keys_from_pkcs8

VECTORS = Path(__file__).parent / "vectors"
FAST = 100_000  # the lowest count readers accept; keeps the tests quick


@cache
def fixed_keys() -> dict[str, DeviceKeys]:
    stored = json.loads((VECTORS / "keys.json").read_text())
    return {
        name: device_keys_from_pkcs8(b64decode(entry["enc_pkcs8"]), b64decode(entry["sig_pkcs8"]))
        for name, entry in stored.items()
    }


@cache
def vector() -> dict:
    return json.loads((VECTORS / "keystore.json").read_text())


@cache
def locked(passphrase: str = "pass phrase") -> dict:
    return lock_keystore(
        fixed_keys()["alice"],
        user_id=1,
        username="alice",
        device_id=3,
        passphrase=passphrase,
        iterations=FAST,
    )


def test_record_shape():
    record = locked()
    keys = fixed_keys()["alice"]
    assert record["v"] == 1 and record["kind"] == "e2ee-chat-keystore"
    assert (record["user_id"], record["username"], record["device_id"]) == (1, "alice", 3)
    assert (record["enc_kid"], record["sig_kid"]) == (keys.enc_kid, keys.sig_kid)
    assert record["kdf"]["name"] == "PBKDF2-SHA256" and record["kdf"]["iterations"] == FAST
    assert len(b64decode(record["kdf"]["salt"])) == 16
    assert len(b64decode(record["iv"])) == 12


def test_default_iterations_are_600000():
    assert lock_keystore.__kwdefaults__["iterations"] == 600_000


def test_round_trip():
    keys = unlock_keystore(locked(), "pass phrase")
    alice = fixed_keys()["alice"]
    assert keys.enc_private == alice.enc_private and keys.sig_private == alice.sig_private


def test_fresh_salt_and_iv():
    again = lock_keystore(
        fixed_keys()["alice"],
        user_id=1,
        username="alice",
        device_id=3,
        passphrase="pass phrase",
        iterations=FAST,
    )
    assert again["kdf"]["salt"] != locked()["kdf"]["salt"] and again["iv"] != locked()["iv"]


@pytest.mark.parametrize("passphrase", ["pass phrase ", "Pass phrase", ""])
def test_wrong_passphrase(passphrase):
    with pytest.raises(WrongPassphrase):
        unlock_keystore(locked(), passphrase)


def test_passphrase_is_nfc_normalized():
    assert derive_kek("e\u0301", b"s" * 16, FAST) == derive_kek("\u00e9", b"s" * 16, FAST)
    record = locked("Cafe\u0301")
    assert unlock_keystore(record, "Caf\u00e9").enc_kid == fixed_keys()["alice"].enc_kid


@pytest.mark.parametrize("field", ["user_id", "device_id"])
def test_aad_binds_user_and_device(field):
    record = {**locked(), field: locked()[field] + 1}
    with pytest.raises(WrongPassphrase):
        unlock_keystore(record, "pass phrase")


def test_tampered_ct_is_refused():
    record = locked()
    sealed = bytearray(b64decode(record["ct"]))
    sealed[0] ^= 1
    with pytest.raises(WrongPassphrase):
        unlock_keystore({**record, "ct": b64encode(bytes(sealed))}, "pass phrase")


@pytest.mark.parametrize("iterations", [99_999, 10_000_001, 0, "600000", 1e6, True])
def test_iteration_bounds(iterations):
    record = locked()
    with pytest.raises(KeystoreError):
        unlock_keystore({**record, "kdf": {**record["kdf"], "iterations": iterations}}, "x")
    with pytest.raises(KeystoreError):
        lock_keystore(
            fixed_keys()["alice"],
            user_id=1,
            username="alice",
            device_id=3,
            passphrase="x",
            iterations=iterations,
        )


def test_kid_mismatch_is_refused():
    bob_kid = fixed_keys()["bob"].enc_kid
    for field in ("enc_kid", "sig_kid"):
        with pytest.raises(KeystoreError, match="match"):
            unlock_keystore({**locked(), field: bob_kid}, "pass phrase")


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"kind": "other"},
        {"iv": "AAAA"},
        {"ct": "not base64"},
        {"user_id": "1"},
        {"kdf": {"name": "scrypt", "iterations": FAST, "salt": "AAAAAAAAAAAAAAAAAAAAAA=="}},
        {"kdf": {"name": "PBKDF2-SHA256", "iterations": FAST, "salt": "AAAA"}},
    ],
)
def test_malformed_record_is_refused(change):
    with pytest.raises(KeystoreError):
        unlock_keystore({**locked(), **change}, "pass phrase")


def test_missing_field_is_refused():
    record = {k: v for k, v in locked().items() if k != "kdf"}
    with pytest.raises(KeystoreError):
        unlock_keystore(record, "pass phrase")


# --- known-answer vector -----------------------------------------------------------------


@pytest.mark.parametrize("form", ["passphrase_nfd", "passphrase_nfc"])
def test_vector_unlocks(form):
    keys = unlock_keystore(vector()["record"], vector()[form])
    alice = fixed_keys()[vector()["device"]]
    assert keys.enc_private == alice.enc_private and keys.sig_private == alice.sig_private


def test_vector_wrong_passphrase():
    with pytest.raises(WrongPassphrase):
        unlock_keystore(vector()["record"], vector()["wrong_passphrase"])


def test_vector_locks_byte_identically():
    record = vector()["record"]
    relocked = lock_keystore(
        fixed_keys()[vector()["device"]],
        user_id=record["user_id"],
        username=record["username"],
        device_id=record["device_id"],
        passphrase=vector()["passphrase_nfc"],
        iterations=record["kdf"]["iterations"],
        salt=b64decode(vector()["salt"]),
        iv=b64decode(vector()["iv"]),
    )
    assert relocked == record
