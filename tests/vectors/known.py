"""Reading the known-answer vectors of this directory: the fixed test keys of ``keys.json``
and the signing-key lookup a roster vector's ``devices`` and ``identities`` describe.

Shared by ``make_vectors.py`` and the Python tests; ``tests/js/helpers.mjs`` is its twin.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from Crypto.PublicKey.RSA import RsaKey

from chatclient.protocol import (
    DeviceKeys,
    b64decode,
    device_keys_from_pkcs8,
    identity_key_from_pkcs8,
    import_public_key,
    verify_device_cert,
)

VECTORS = Path(__file__).resolve().parent


def load(name: str) -> dict:
    """Parse ``tests/vectors/<name>``."""
    return json.loads((VECTORS / name).read_text())


@cache
def fixed_keys() -> dict[str, DeviceKeys]:
    """The fixed devices of keys.json; those stored with an identity hold it."""
    keys = {}
    for name, entry in load("keys.json").items():
        id_pkcs8 = b64decode(entry["id_pkcs8"]) if "id_pkcs8" in entry else None
        keys[name] = device_keys_from_pkcs8(
            b64decode(entry["enc_pkcs8"]), b64decode(entry["sig_pkcs8"]), id_pkcs8
        )
    return keys


@cache
def fixed_identity(name: str) -> RsaKey:
    """The identity private key stored with the device ``name`` in keys.json."""
    return identity_key_from_pkcs8(b64decode(load("keys.json")[name]["id_pkcs8"]))


def roster_signing_key(devices: dict, identities: dict):
    """``signing_key(record)`` for ``roster.verify_chain``: the signing key of the device
    of ``record["by"]`` that holds ``sig_kid`` and whose cert verifies under that user's
    identity, else None. ``devices`` maps a user id (str) to a list of
    ``{"enc_kid","sig_kid","sig_spki","cert"}`` and ``identities`` a user id to the
    base64 SPKI of her identity key."""
    imported: dict[str, RsaKey | None] = {}

    def signing_key(record: dict) -> RsaKey | None:
        user = str(record["by"])
        cache_key = f"{user}|{record['sig_kid']}"
        if cache_key not in imported:
            imported[cache_key] = None
            for device in devices.get(user, []):
                if device["sig_kid"] != record["sig_kid"] or user not in identities:
                    continue
                id_public = import_public_key(b64decode(identities[user]))
                if verify_device_cert(
                    id_public, int(user), device["enc_kid"], device["sig_kid"], device["cert"]
                ):
                    imported[cache_key] = import_public_key(b64decode(device["sig_spki"]))
        return imported[cache_key]

    return signing_key
