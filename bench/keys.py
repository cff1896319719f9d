"""Device key pairs for the benchmark, cached on disk so reruns start fast.

Keys are made with `cryptography` (OpenSSL: ~10x faster to generate and ~3x faster to
sign than pycryptodome) and imported into `chatclient.protocol.DeviceKeys`, so the SPKI
and kids are exactly what the protocol module and the server compute.

    python -m bench.keys 500          # make sure 500 devices' keys are cached
"""

from __future__ import annotations

import base64
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

CACHE = Path(__file__).resolve().parent / ".cache"
BITS = 2048


def _one_key(_: int = 0) -> str:
    """Base64 PKCS#8 of one fresh RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=BITS)
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return base64.b64encode(der).decode()


def _one(_: int) -> tuple[str, str]:
    return _one_key(), _one_key()  # encryption, signing


def cache_path(bits: int = BITS) -> Path:
    return CACHE / f"device-keys-{bits}.jsonl"


def ensure(count: int, bits: int = BITS) -> list[tuple[bytes, bytes]]:
    """At least `count` (enc_pkcs8, sig_pkcs8) DER pairs, generating the missing ones."""
    assert bits == BITS, "only 2048-bit keys are generated here"
    path = cache_path(bits)
    CACHE.mkdir(parents=True, exist_ok=True)
    rows = []
    if path.exists():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    missing = count - len(rows)
    if missing > 0:
        print(f"generating {missing} device key pairs ({bits} bits) into {path}", file=sys.stderr)
        with (
            ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool,
            path.open("a") as out,
        ):
            for enc, sig in pool.map(_one, range(missing), chunksize=4):
                out.write(json.dumps([enc, sig]) + "\n")
                rows.append([enc, sig])
    return [(base64.b64decode(e), base64.b64decode(s)) for e, s in rows[:count]]


def ensure_identities(count: int) -> list[bytes]:
    """At least `count` identity keys (PKCS#8 DER, one per user, §7), cached like the
    device keys in their own file."""
    path = CACHE / f"identity-keys-{BITS}.jsonl"
    CACHE.mkdir(parents=True, exist_ok=True)
    rows = []
    if path.exists():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    missing = count - len(rows)
    if missing > 0:
        print(f"generating {missing} identity keys ({BITS} bits) into {path}", file=sys.stderr)
        with (
            ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool,
            path.open("a") as out,
        ):
            for der in pool.map(_one_key, range(missing), chunksize=4):
                out.write(json.dumps(der) + "\n")
                rows.append(der)
    return [base64.b64decode(der) for der in rows[:count]]


_identity_ders: list = []
_identity_cache: dict = {}


def identity_key(index: int):
    """The pycryptodome RsaKey of cached identity key `index` (fast import)."""
    if index not in _identity_cache:
        if len(_identity_ders) <= index:
            _identity_ders[:] = ensure_identities(index + 1)
        _identity_cache[index] = _construct(_identity_ders[index])
    return _identity_cache[index]


_pairs_cache: list = []


def pairs(count: int) -> list[tuple[bytes, bytes]]:
    """`ensure(count)`, read from disk once per process."""
    if len(_pairs_cache) < count:
        _pairs_cache[:] = ensure(count)
    return _pairs_cache


def _construct(der: bytes):
    """A pycryptodome RsaKey from PKCS#8 DER without its slow primality re-check (our own
    keys, made by OpenSSL just above)."""
    from Crypto.PublicKey import RSA

    n = serialization.load_der_private_key(
        der, None, unsafe_skip_rsa_key_validation=True
    ).private_numbers()
    pub = n.public_numbers
    return RSA.construct((pub.n, pub.e, n.d, n.p, n.q), consistency_check=False)


_dk_cache: dict = {}


def device_keys(index: int):
    """`chatclient.protocol.DeviceKeys` of cached device `index` (fast import)."""
    from chatclient.protocol import DeviceKeys

    if index not in _dk_cache:
        enc, sig = pairs(index + 1)[index]
        _dk_cache[index] = DeviceKeys(enc_private=_construct(enc), sig_private=_construct(sig))
    return _dk_cache[index]


def signing_key(index: int):
    """The `cryptography` private signing key of cached device `index`."""
    return serialization.load_der_private_key(
        pairs(index + 1)[index][1], None, unsafe_skip_rsa_key_validation=True
    )


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    print(len(ensure(n)), "key pairs cached in", cache_path())
