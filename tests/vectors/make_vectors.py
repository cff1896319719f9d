"""Write the known-answer vectors in this directory from the Python implementation.

    .venv/bin/python tests/vectors/make_vectors.py [--new-keys]

``keys.json`` holds fixed 2048-bit test keys (PKCS#8 base64; test use only) and is
kept unless ``--new-keys``. ``envelope.json`` fixes K and the IV, so its iv/ct/kc are
deterministic; the wrapped keys and signature are one randomized instance that every
implementation must open; its tamper cases change one field each and every
implementation must reject them. ``keystore.json`` fixes salt and IV, so locking is
deterministic. ``device_proof.json`` is one (randomized) proof every implementation
verifies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from chatclient.keystore import lock_keystore  # noqa: E402
from chatclient.protocol import (  # noqa: E402
    DeviceKeys,
    b64decode,
    b64encode,
    device_keys_from_pkcs8,
    generate_device_keys,
    seal_envelope,
    sign_device_proof,
)

DEVICES = {"alice": (1, 11), "bob": (2, 21)}  # name: (user_id, device_id)
CONTENT_KEY = bytes(range(32))
IV = bytes(range(100, 112))
PLAINTEXT = {"type": "text", "text": 'Grüße, 世界 👋 "quoted" \\ back\nslash\ttab'}
CONVERSATION_ID = 7
CLIENT_MSG_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
# "Café ñ" with combining accents (NFD); readers must NFC-normalize it.
PASSPHRASE_NFD = "correct horse Cafe\u0301 n\u0303 battery"
SALT = bytes(range(200, 216))
KEYSTORE_IV = bytes(range(50, 62))
KEYSTORE_ITERATIONS = 100_000


def write(name: str, data: dict) -> None:
    (HERE / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def flip_bit(b64: str, index: int = 0) -> str:
    """The same base64 with one bit flipped in byte ``index`` (still canonical)."""
    data = bytearray(b64decode(b64))
    data[index] ^= 0x01
    return b64encode(bytes(data))


def load_keys(new: bool) -> dict[str, DeviceKeys]:
    path = HERE / "keys.json"
    if new or not path.exists():
        keys = {name: generate_device_keys(2048) for name in DEVICES}
        write(
            "keys.json",
            {
                name: {
                    "user_id": DEVICES[name][0],
                    "device_id": DEVICES[name][1],
                    "enc_pkcs8": b64encode(k.enc_private.export_key("DER", pkcs=8)),
                    "sig_pkcs8": b64encode(k.sig_private.export_key("DER", pkcs=8)),
                    "enc_spki": b64encode(k.enc_spki),
                    "sig_spki": b64encode(k.sig_spki),
                    "enc_kid": k.enc_kid,
                    "sig_kid": k.sig_kid,
                }
                for name, k in keys.items()
            },
        )
    stored = json.loads(path.read_text())
    return {
        name: device_keys_from_pkcs8(b64decode(entry["enc_pkcs8"]), b64decode(entry["sig_pkcs8"]))
        for name, entry in stored.items()
    }


def envelope_vector(keys: dict[str, DeviceKeys]) -> dict:
    alice, bob = keys["alice"], keys["bob"]
    context = {
        "conversation_id": CONVERSATION_ID,
        "sender_id": DEVICES["alice"][0],
        "client_msg_id": CLIENT_MSG_ID,
    }
    envelope = seal_envelope(
        PLAINTEXT,
        **context,
        sender_keys=alice,
        recipient_keys={k.enc_kid: k.enc_public for k in (alice, bob)},
        content_key=CONTENT_KEY,
        iv=IV,
    )

    def with_field(field: str, value: object) -> dict:
        return {**envelope, field: value}

    bob_keys = dict(envelope["keys"])
    bob_keys[bob.enc_kid] = flip_bit(bob_keys[bob.enc_kid], 5)
    tampered_envelopes = {
        "iv": with_field("iv", flip_bit(envelope["iv"])),
        "ct": with_field("ct", flip_bit(envelope["ct"])),
        "ct_tag": with_field("ct", flip_bit(envelope["ct"], -1)),
        "kc": with_field("kc", flip_bit(envelope["kc"])),
        "sig": with_field("sig", flip_bit(envelope["sig"], 9)),
        "sig_kid": with_field("sig_kid", bob.sig_kid),
        "wrapped_key": with_field("keys", bob_keys),
        "extra_field": with_field("extra", 1),
        "version": with_field("v", 2),
    }
    tampered_context = {
        "conversation_id": {**context, "conversation_id": CONVERSATION_ID + 1},
        "sender_id": {**context, "sender_id": DEVICES["bob"][0]},
        "client_msg_id": {**context, "client_msg_id": "0f8fad5b-d9cb-469f-a165-70867728950f"},
    }
    tampers = [
        {"name": name, "envelope": env, "context": context}
        for name, env in tampered_envelopes.items()
    ] + [
        {"name": name, "envelope": envelope, "context": ctx}
        for name, ctx in tampered_context.items()
    ]
    return {
        "description": "alice seals to her own and bob's device; bob (and alice) must open it",
        "sender": "alice",
        "recipients": ["alice", "bob"],
        "context": context,
        "plaintext": PLAINTEXT,
        "content_key": b64encode(CONTENT_KEY),
        "iv": b64encode(IV),
        "deterministic": {k: envelope[k] for k in ("iv", "ct", "kc")},
        "envelope": envelope,
        "tampered": tampers,
    }


def keystore_vector(keys: dict[str, DeviceKeys]) -> dict:
    user_id, device_id = DEVICES["alice"]
    record = lock_keystore(
        keys["alice"],
        user_id=user_id,
        username="alice",
        device_id=device_id,
        passphrase=PASSPHRASE_NFD,
        iterations=KEYSTORE_ITERATIONS,
        salt=SALT,
        iv=KEYSTORE_IV,
    )
    return {
        "description": "alice's keystore; the NFD and NFC passphrases both unlock it",
        "device": "alice",
        "passphrase_nfd": PASSPHRASE_NFD,
        "passphrase_nfc": "correct horse Café ñ battery",
        "wrong_passphrase": "correct horse Cafe n battery",
        "salt": b64encode(SALT),
        "iv": b64encode(KEYSTORE_IV),
        "record": record,
    }


def device_proof_vector(keys: dict[str, DeviceKeys]) -> dict:
    alice = keys["alice"]
    user_id = DEVICES["alice"][0]
    return {
        "description": "alice's proof of possession; every implementation must verify it",
        "device": "alice",
        "user_id": user_id,
        "enc_kid": alice.enc_kid,
        "sig_kid": alice.sig_kid,
        "proof": sign_device_proof(alice, user_id),
    }


def main() -> None:
    keys = load_keys(new="--new-keys" in sys.argv[1:])
    write("device_proof.json", device_proof_vector(keys))
    write("envelope.json", envelope_vector(keys))
    write("keystore.json", keystore_vector(keys))


if __name__ == "__main__":
    main()
