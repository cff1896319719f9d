"""Private keys at rest (PROTOCOL.md §3): the passphrase-locked keystore record, v2 with
the user's identity key, or v1 (a device not upgraded yet) which still opens.

The same JSON is the browser's IndexedDB record and the key file, so a keystore locked
by ``static/chat/keystore.js`` unlocks here and back. Pure functions; no I/O.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata

from Crypto.Cipher import AES
from Crypto.Random import get_random_bytes

from .errors import KeystoreError, WrongPassphrase  # noqa: F401  (re-exported here)
from .protocol import (
    IV_BYTES,
    TAG_BYTES,
    DeviceKeys,
    ProtocolError,
    b64decode,
    b64encode,
    device_keys_from_pkcs8,
    is_kid,
)

KIND = "e2ee-chat-keystore"
KDF_NAME = "PBKDF2-SHA256"
DEFAULT_ITERATIONS = 600_000
MIN_ITERATIONS = 100_000
MAX_ITERATIONS = 10_000_000
SALT_BYTES = 16
SECRET_FIELDS = {
    1: frozenset({"enc_pkcs8", "sig_pkcs8"}),
    2: frozenset({"enc_pkcs8", "sig_pkcs8", "id_pkcs8"}),
}


def derive_kek(passphrase: str, salt: bytes, iterations: int) -> bytes:
    """PBKDF2-HMAC-SHA256 of the UTF-8 of the passphrase's NFC form, 32 bytes."""
    secret = unicodedata.normalize("NFC", passphrase).encode()
    return hashlib.pbkdf2_hmac("sha256", secret, salt, iterations, 32)


def keystore_aad(user_id: int, device_id: int, id_kid: str | None = None) -> bytes:
    """``e2ee-chat/v2/keystore|<user_id>|<device_id>|<id_kid>`` as UTF-8, or v1's
    ``e2ee-chat/v1/keystore|<user_id>|<device_id>`` without an identity."""
    if id_kid is None:
        return f"e2ee-chat/v1/keystore|{user_id}|{device_id}".encode()
    return f"e2ee-chat/v2/keystore|{user_id}|{device_id}|{id_kid}".encode()


def _check_kdf(iterations: object, salt: bytes) -> int:
    if type(iterations) is not int or not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise KeystoreError(f"iterations must be {MIN_ITERATIONS}..{MAX_ITERATIONS}")
    if len(salt) < SALT_BYTES:
        raise KeystoreError(f"salt must be at least {SALT_BYTES} bytes")
    return iterations


def _check_id(value: object, name: str) -> int:
    if type(value) is not int:
        raise KeystoreError(f"{name} must be an integer")
    return value


def lock_keystore(
    device_keys: DeviceKeys,
    *,
    user_id: int,
    username: str,
    device_id: int,
    passphrase: str,
    iterations: int = DEFAULT_ITERATIONS,
    salt: bytes | None = None,
    iv: bytes | None = None,
) -> dict:
    """Encrypt ``device_keys`` under ``passphrase`` into a §3 record: v2 with the identity
    key when the keys hold one, else v1 (a device not upgraded yet, §7.5).

    ``salt`` (16 bytes) and ``iv`` (12 bytes) are fresh random unless given.
    """
    salt = get_random_bytes(SALT_BYTES) if salt is None else salt
    iv = get_random_bytes(IV_BYTES) if iv is None else iv
    _check_kdf(iterations, salt)
    _check_id(user_id, "user_id")
    _check_id(device_id, "device_id")
    if len(iv) != IV_BYTES:
        raise KeystoreError("iv must be 12 bytes")
    secrets = {
        "enc_pkcs8": b64encode(device_keys.enc_private.export_key("DER", pkcs=8)),
        "sig_pkcs8": b64encode(device_keys.sig_private.export_key("DER", pkcs=8)),
    }
    id_kid = device_keys.id_kid
    if id_kid is not None:
        secrets["id_pkcs8"] = b64encode(device_keys.id_private.export_key("DER", pkcs=8))
    cipher = AES.new(derive_kek(passphrase, salt, iterations), AES.MODE_GCM, nonce=iv)
    cipher.update(keystore_aad(user_id, device_id, id_kid))
    body, tag = cipher.encrypt_and_digest(json.dumps(secrets, separators=(",", ":")).encode())
    record = {
        "v": 1 if id_kid is None else 2,
        "kind": KIND,
        "user_id": user_id,
        "username": username,
        "device_id": device_id,
        "enc_kid": device_keys.enc_kid,
        "sig_kid": device_keys.sig_kid,
    }
    if id_kid is not None:
        record["id_kid"] = id_kid
    return {
        **record,
        "kdf": {"name": KDF_NAME, "iterations": iterations, "salt": b64encode(salt)},
        "iv": b64encode(iv),
        "ct": b64encode(body + tag),
    }


def unlock_keystore(record: dict, passphrase: str) -> DeviceKeys:
    """Decrypt a §3 record (v2, or v1 without an identity key) and return its keys.

    Refuses a malformed record, iterations outside 100,000..10,000,000, a plaintext that
    does not hold exactly the keys of the record's ``v``, and keys that do not match
    ``enc_kid``/``sig_kid``/``id_kid`` or are not three different keys
    (``KeystoreError``); a failed decryption is ``WrongPassphrase``. Unknown extra
    fields in the record are ignored.
    """
    try:
        version = record["v"]
        if (
            type(version) is not int
            or version not in (1, 2)
            or record["kind"] != KIND
            or record["kdf"]["name"] != KDF_NAME
        ):
            raise KeystoreError("not an e2ee-chat keystore of v1 or v2")
        user_id = _check_id(record["user_id"], "user_id")
        device_id = _check_id(record["device_id"], "device_id")
        if user_id < 1 or device_id < 1:
            raise KeystoreError("user_id and device_id must be at least 1")
        id_kid = record["id_kid"] if version == 2 else None
        if version == 2 and not is_kid(id_kid):
            raise KeystoreError("id_kid must be a kid")
        salt = b64decode(record["kdf"]["salt"])
        iterations = _check_kdf(record["kdf"]["iterations"], salt)
        iv = b64decode(record["iv"], IV_BYTES)
        sealed = b64decode(record["ct"])
    except (KeyError, TypeError, ProtocolError) as exc:
        raise KeystoreError("malformed keystore record") from exc
    if len(sealed) < TAG_BYTES:
        raise KeystoreError("keystore ct is shorter than the GCM tag")
    cipher = AES.new(derive_kek(passphrase, salt, iterations), AES.MODE_GCM, nonce=iv)
    cipher.update(keystore_aad(user_id, device_id, id_kid))
    try:
        data = cipher.decrypt_and_verify(sealed[:-TAG_BYTES], sealed[-TAG_BYTES:])
    except ValueError as exc:
        raise WrongPassphrase("wrong passphrase") from exc
    expected = SECRET_FIELDS[version]
    try:
        secrets = json.loads(data)
        if not isinstance(secrets, dict) or set(secrets) != expected:
            raise KeystoreError(f"a v{version} keystore holds exactly {sorted(expected)}")
        keys = device_keys_from_pkcs8(
            b64decode(secrets["enc_pkcs8"]),
            b64decode(secrets["sig_pkcs8"]),
            b64decode(secrets["id_pkcs8"]) if version == 2 else None,
        )
    except KeystoreError:
        raise
    except (ValueError, KeyError, TypeError, ProtocolError) as exc:
        raise KeystoreError("keystore plaintext does not hold a device's keys") from exc
    if (keys.enc_kid, keys.sig_kid, keys.id_kid) != (record["enc_kid"], record["sig_kid"], id_kid):
        raise KeystoreError("keystore keys do not match enc_kid/sig_kid/id_kid")
    return keys
