"""chatclient.keystore: lock/unlock of v1 and v2 records, NFC passphrases, bounds, kid
checks and the known-answer vectors."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import pytest

from chatclient.keystore import (
    KeystoreError,
    WrongPassphrase,
    derive_kek,
    keystore_aad,
    lock_keystore,
    unlock_keystore,
)
from chatclient.protocol import DeviceKeys, b64decode, b64encode
from tests.vectors.known import fixed_keys, load

FAST = 100_000  # the lowest count readers accept; keeps the tests quick


def v1_keys(name: str = "alice") -> DeviceKeys:
    return replace(fixed_keys()[name], id_private=None)


@cache
def vector() -> dict:
    return load("keystore_v1.json")


@cache
def locked(passphrase: str = "pass phrase") -> dict:
    """A v1 record (the keys hold no identity)."""
    return lock_keystore(
        v1_keys(),
        user_id=1,
        username="alice",
        device_id=3,
        passphrase=passphrase,
        iterations=FAST,
    )


@cache
def locked_v2() -> dict:
    return lock_keystore(
        fixed_keys()["alice"],
        user_id=1,
        username="alice",
        device_id=3,
        passphrase="pass phrase",
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
    assert keys == v1_keys() and keys.id_private is None


def test_v2_record_shape_and_round_trip():
    record = locked_v2()
    alice = fixed_keys()["alice"]
    assert record["v"] == 2 and record["id_kid"] == alice.id_kid
    assert list(record) == [
        "v",
        "kind",
        "user_id",
        "username",
        "device_id",
        "enc_kid",
        "sig_kid",
        "id_kid",
        "kdf",
        "iv",
        "ct",
    ]
    assert unlock_keystore(record, "pass phrase") == alice


def test_keystore_aad():
    assert keystore_aad(1, 3) == b"e2ee-chat/v1/keystore|1|3"
    assert keystore_aad(1, 3, "ab" * 32) == ("e2ee-chat/v2/keystore|1|3|" + "ab" * 32).encode()


@pytest.mark.parametrize("field", ["id_kid", "v"])
def test_v2_aad_binds_the_identity(field):
    changed = {"id_kid": fixed_keys()["bob"].id_kid, "v": 1}[field]
    with pytest.raises(WrongPassphrase):
        unlock_keystore({**locked_v2(), field: changed}, "pass phrase")


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


# --- known-answer vectors ----------------------------------------------------------------


@pytest.mark.parametrize("form", ["passphrase_nfd", "passphrase_nfc"])
def test_vector_unlocks(form):
    keys = unlock_keystore(vector()["record"], vector()[form])
    assert keys == v1_keys(vector()["device"])


def test_vector_wrong_passphrase():
    with pytest.raises(WrongPassphrase):
        unlock_keystore(vector()["record"], vector()["wrong_passphrase"])


def test_vector_locks_byte_identically():
    record = vector()["record"]
    relocked = lock_keystore(
        v1_keys(vector()["device"]),
        user_id=record["user_id"],
        username=record["username"],
        device_id=record["device_id"],
        passphrase=vector()["passphrase_nfc"],
        iterations=record["kdf"]["iterations"],
        salt=b64decode(vector()["salt"]),
        iv=b64decode(vector()["iv"]),
    )
    assert relocked == record


@pytest.mark.parametrize("form", ["passphrase_nfd", "passphrase_nfc"])
def test_v2_vector_unlocks(form):
    v2 = load("keystore_v2.json")
    assert unlock_keystore(v2["record"], v2[form]) == fixed_keys()[v2["device"]]
    assert keystore_aad(1, 11, v2["record"]["id_kid"]).decode() == v2["aad"]


def test_v2_vector_wrong_passphrase():
    v2 = load("keystore_v2.json")
    with pytest.raises(WrongPassphrase):
        unlock_keystore(v2["record"], v2["wrong_passphrase"])


def test_v2_vector_locks_byte_identically():
    v2 = load("keystore_v2.json")
    record = v2["record"]
    relocked = lock_keystore(
        fixed_keys()[v2["device"]],
        user_id=record["user_id"],
        username=record["username"],
        device_id=record["device_id"],
        passphrase=v2["passphrase_nfd"],
        iterations=record["kdf"]["iterations"],
        salt=b64decode(v2["salt"]),
        iv=b64decode(v2["iv"]),
    )
    assert relocked == record


def test_v2_vector_tampers_are_refused():
    v2 = load("keystore_v2.json")
    names = {case["name"] for case in v2["tampered"]}
    assert names >= {"id_kid", "missing_id_kid", "v2_without_id_key", "v1_with_id_key"}
    for case in v2["tampered"]:
        with pytest.raises(KeystoreError) as exc:
            unlock_keystore(case["record"], v2["passphrase_nfc"])
        assert type(exc.value).__name__ == case["error"], case["name"]
