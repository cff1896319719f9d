"""Write the known-answer vectors in this directory from the Python implementation.

    .venv/bin/python tests/vectors/make_vectors.py [--force] [--new-keys]

``keys.json`` holds fixed 2048-bit test keys (PKCS#8 base64; test use only): devices
``alice`` (user 1), ``bob`` (user 2) and ``alice2`` (user 1's device being linked), and
the identity keys of alice and bob (stored with their first device). Missing keys are
added, existing ones kept unless ``--new-keys``.

A vector file is written when it is missing, or again with ``--force``; the v1 files
(``envelope_v1.json``, ``keystore_v1.json``, ``device_proof.json``) were made by the v1
code and are never rewritten once there, so what was stored before the upgrade keeps
opening. Where a vector fixes its random inputs (content key, IV, salt, wrap key) its
deterministic outputs are given for every implementation to reproduce byte for byte;
RSA-OAEP wraps and RSA-PSS signatures are one randomized instance to open or verify.
Every ``tampered`` case changes one field and must be refused by every implementation
with the error or verdict it names (computed here by the Python modules).
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from Crypto.Cipher import AES, PKCS1_OAEP  # noqa: E402
from Crypto.Hash import SHA256  # noqa: E402

from chatclient import attachments, ordering, roster  # noqa: E402
from chatclient.keystore import derive_kek, keystore_aad, lock_keystore  # noqa: E402
from chatclient.protocol import (  # noqa: E402
    DeviceKeys,
    ProtocolError,
    b64decode,
    b64encode,
    check_trust_state,
    compute_kid,
    device_keys_from_pkcs8,
    format_link_code,
    format_safety_number,
    generate_device_keys,
    generate_identity_key,
    id_wrap_aad,
    make_id_wrap,
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
    spki_of,
    verify_device_cert,
    verify_identity_proof,
    verify_identity_upgrade,
)
from chatclient.protocol import link_code as compute_link_code  # noqa: E402
from tests.vectors.known import roster_signing_key  # noqa: E402

DEVICES = {"alice": (1, 11), "bob": (2, 21), "alice2": (1, 12)}  # name: (user_id, device_id)
WITH_IDENTITY = ("alice", "bob")
CONTENT_KEY = bytes(range(32))
IV = bytes(range(100, 112))
PLAINTEXT = {"type": "text", "text": 'Grüße, 世界 👋 "quoted" \\ back\nslash\ttab'}
CONVERSATION_ID = 7
CLIENT_MSG_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
OTHER_CLIENT_MSG_ID = "0f8fad5b-d9cb-469f-a165-70867728950f"
# "Café ñ" with combining accents (NFD); readers must NFC-normalize it.
PASSPHRASE_NFD = "correct horse Cafe\u0301 n\u0303 battery"
PASSPHRASE_NFC = "correct horse Café ñ battery"
WRONG_PASSPHRASE = "correct horse Cafe n battery"
SALT = bytes(range(200, 216))
KEYSTORE_IV = bytes(range(50, 62))
KEYSTORE_ITERATIONS = 100_000
WRAP_KEY = bytes(range(64, 96))
WRAP_IV = bytes(range(150, 162))
GID = "3f2b8c1e-5d4a-4b6f-9e7d-2c1a0b9f8e7d"
OTHER_GID = "3f2b8c1e-5d4a-4b6f-9e7d-2c1a0b9f8e7e"
HEAD = hashlib.sha256(b"a roster head").hexdigest()
FROZEN = ("envelope_v1.json", "keystore_v1.json", "device_proof.json")


def write(name: str, data: dict, force: bool) -> None:
    path = HERE / name
    if path.exists() and (name in FROZEN or not force):
        return
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def flip_bit(b64: str, index: int = 0) -> str:
    """The same base64 with one bit flipped in byte ``index`` (still canonical)."""
    data = bytearray(b64decode(b64))
    data[index] ^= 0x01
    return b64encode(bytes(data))


def flip_hex(text: str) -> str:
    """The same hex with its last digit changed."""
    return text[:-1] + ("0" if text[-1] != "0" else "1")


def der(key) -> str:
    return b64encode(key.export_key("DER", pkcs=8))


# --- keys ---------------------------------------------------------------------------------


def load_keys(new: bool) -> dict[str, DeviceKeys]:
    """keys.json's devices (adding what is missing), with the identity where stored."""
    path = HERE / "keys.json"
    stored = {} if new or not path.exists() else json.loads(path.read_text())
    changed = False
    for name, (user_id, device_id) in DEVICES.items():
        if name not in stored:
            keys = generate_device_keys(2048)
            stored[name] = {
                "user_id": user_id,
                "device_id": device_id,
                "enc_pkcs8": der(keys.enc_private),
                "sig_pkcs8": der(keys.sig_private),
                "enc_spki": b64encode(keys.enc_spki),
                "sig_spki": b64encode(keys.sig_spki),
                "enc_kid": keys.enc_kid,
                "sig_kid": keys.sig_kid,
            }
            changed = True
        if name in WITH_IDENTITY and "id_pkcs8" not in stored[name]:
            identity = generate_identity_key(2048)
            stored[name]["id_pkcs8"] = der(identity)
            stored[name]["id_spki"] = b64encode(spki_of(identity))
            stored[name]["id_kid"] = compute_kid(spki_of(identity))
            changed = True
    if changed:
        path.write_text(json.dumps(stored, indent=2) + "\n")
    return {
        name: device_keys_from_pkcs8(
            b64decode(entry["enc_pkcs8"]),
            b64decode(entry["sig_pkcs8"]),
            b64decode(entry["id_pkcs8"]) if "id_pkcs8" in entry else None,
        )
        for name, entry in stored.items()
    }


def v1(keys: DeviceKeys) -> DeviceKeys:
    return replace(keys, id_private=None)


# --- envelopes ----------------------------------------------------------------------------


def envelope_v1_vector(keys: dict[str, DeviceKeys]) -> dict:
    """Only made when envelope_v1.json is missing: the file is the v1 code's."""
    alice, bob = keys["alice"], keys["bob"]
    context = {
        "conversation_id": CONVERSATION_ID,
        "sender_id": DEVICES["alice"][0],
        "client_msg_id": CLIENT_MSG_ID,
    }
    envelope = seal_envelope_v1(
        PLAINTEXT,
        **context,
        sender_keys=alice,
        recipient_keys={k.enc_kid: k.enc_public for k in (alice, bob)},
        content_key=CONTENT_KEY,
        iv=IV,
    )
    bob_keys = {**envelope["keys"], bob.enc_kid: flip_bit(envelope["keys"][bob.enc_kid], 5)}
    tampered = {
        "iv": {**envelope, "iv": flip_bit(envelope["iv"])},
        "ct": {**envelope, "ct": flip_bit(envelope["ct"])},
        "ct_tag": {**envelope, "ct": flip_bit(envelope["ct"], -1)},
        "kc": {**envelope, "kc": flip_bit(envelope["kc"])},
        "sig": {**envelope, "sig": flip_bit(envelope["sig"], 9)},
        "sig_kid": {**envelope, "sig_kid": bob.sig_kid},
        "wrapped_key": {**envelope, "keys": bob_keys},
        "extra_field": {**envelope, "extra": 1},
        "version": {**envelope, "v": 2},
    }
    contexts = {
        "conversation_id": {**context, "conversation_id": CONVERSATION_ID + 1},
        "sender_id": {**context, "sender_id": DEVICES["bob"][0]},
        "client_msg_id": {**context, "client_msg_id": OTHER_CLIENT_MSG_ID},
    }
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
        "tampered": [{"name": n, "envelope": e, "context": context} for n, e in tampered.items()]
        + [{"name": n, "envelope": envelope, "context": c} for n, c in contexts.items()],
    }


def envelope_v2_vector(keys: dict[str, DeviceKeys]) -> dict:
    alice, bob = keys["alice"], keys["bob"]
    recipients = {k.enc_kid: k.enc_public for k in (alice, bob)}
    context = {
        "conversation_id": CONVERSATION_ID,
        "sender_id": DEVICES["alice"][0],
        "client_msg_id": CLIENT_MSG_ID,
    }
    envelope = seal_envelope(
        PLAINTEXT,
        **context,
        n=17,
        head=HEAD,
        sender_keys=alice,
        recipient_keys=recipients,
        content_key=CONTENT_KEY,
        iv=IV,
    )
    direct_context = {**context, "conversation_id": 8, "client_msg_id": OTHER_CLIENT_MSG_ID}
    direct = seal_envelope(
        {"type": "text", "text": "direct"},
        **direct_context,
        n=1,
        head="",
        sender_keys=alice,
        recipient_keys=recipients,
    )
    without = {k: v for k, v in envelope.items() if k not in ("n", "head")}
    bob_keys = {**envelope["keys"], bob.enc_kid: flip_bit(envelope["keys"][bob.enc_kid], 5)}
    tampered = {
        "iv": {**envelope, "iv": flip_bit(envelope["iv"])},
        "ct": {**envelope, "ct": flip_bit(envelope["ct"])},
        "ct_tag": {**envelope, "ct": flip_bit(envelope["ct"], -1)},
        "kc": {**envelope, "kc": flip_bit(envelope["kc"])},
        "sig": {**envelope, "sig": flip_bit(envelope["sig"], 9)},
        "sig_kid": {**envelope, "sig_kid": bob.sig_kid},
        "wrapped_key": {**envelope, "keys": bob_keys},
        "extra_field": {**envelope, "extra": 1},
        "missing_n": {k: v for k, v in envelope.items() if k != "n"},
        "missing_head": {k: v for k, v in envelope.items() if k != "head"},
        "n": {**envelope, "n": 18},
        "n_lower": {**envelope, "n": 16},
        "n_zero": {**envelope, "n": 0},
        "n_string": {**envelope, "n": "17"},
        "n_fraction": {**envelope, "n": 17.5},
        "n_too_big": {**envelope, "n": 2**53},
        "n_bool": {**envelope, "n": True},
        "head": {**envelope, "head": flip_hex(HEAD)},
        "head_empty": {**envelope, "head": ""},
        "head_upper": {**envelope, "head": HEAD.upper()},
        "head_short": {**envelope, "head": HEAD[:-1]},
        "version_1": {**envelope, "v": 1},
        "version_1_without_n_head": {**without, "v": 1},
        "version_3": {**envelope, "v": 3},
    }
    contexts = {
        "conversation_id": {**context, "conversation_id": CONVERSATION_ID + 1},
        "sender_id": {**context, "sender_id": DEVICES["bob"][0]},
        "client_msg_id": {**context, "client_msg_id": OTHER_CLIENT_MSG_ID},
    }
    return {
        "description": (
            "alice seals a v2 envelope (n 17, a group head) to her own and bob's device; both"
            " must open it, reproduce iv/ct/kc from content_key and iv, and refuse every"
            " tampered case; 'direct' is a second one (head empty) that must open"
        ),
        "sender": "alice",
        "recipients": ["alice", "bob"],
        "context": context,
        "n": 17,
        "head": HEAD,
        "plaintext": PLAINTEXT,
        "content_key": b64encode(CONTENT_KEY),
        "iv": b64encode(IV),
        "aad": (f"e2ee-chat/v2/msg|{CONVERSATION_ID}|1|{CLIENT_MSG_ID}|{alice.sig_kid}|17|{HEAD}"),
        "deterministic": {k: envelope[k] for k in ("iv", "ct", "kc")},
        "envelope": envelope,
        "direct": {
            "context": direct_context,
            "plaintext": {"type": "text", "text": "direct"},
            "envelope": direct,
        },
        "tampered": [{"name": n, "envelope": e, "context": context} for n, e in tampered.items()]
        + [{"name": n, "envelope": envelope, "context": c} for n, c in contexts.items()],
    }


def history_rewrap_vector(keys: dict[str, DeviceKeys]) -> dict:
    alice, bob, alice2 = keys["alice"], keys["bob"], keys["alice2"]
    context = {"conversation_id": 9, "sender_id": 2, "client_msg_id": CLIENT_MSG_ID}
    plaintext = {"type": "text", "text": "before alice2 was linked"}
    envelope = seal_envelope(
        plaintext,
        **context,
        n=3,
        head="",
        sender_keys=bob,
        recipient_keys={k.enc_kid: k.enc_public for k in (alice, bob)},
    )
    ek = rewrap_content_key(envelope, alice, alice2.enc_public)
    oaep = PKCS1_OAEP.new(alice2.enc_public, hashAlgo=SHA256)
    return {
        "description": (
            "alice's device rewraps K of bob's message for her new device alice2 (§7.3); the"
            " envelope served to alice2 (its keys holding only her entry) must open as"
            " alice2 with bob's signing key; every tampered history key must be refused"
        ),
        "sender": "bob",
        "rewrapped_by": "alice",
        "recipient": "alice2",
        "context": context,
        "plaintext": plaintext,
        "envelope": envelope,
        "ek": ek,
        "served": {**envelope, "keys": {alice2.enc_kid: ek}},
        "tampered": [
            {"name": "ek", "ek": flip_bit(ek, 7)},
            {"name": "ek_other_key", "ek": b64encode(oaep.encrypt(b"\x01" * 32))},
            {"name": "ek_short_key", "ek": b64encode(oaep.encrypt(b"\x01" * 16))},
            {"name": "ek_for_bob", "ek": rewrap_content_key(envelope, alice, bob.enc_public)},
        ],
    }


# --- identity, certs, upgrade, link codes, id_wrap, safety numbers --------------------------


def check(fn, *args) -> bool | str:
    """What a verify function gives: True, False or the ProtocolError code it raises."""
    try:
        return fn(*args)
    except ProtocolError as exc:
        return exc.code


def identity_proof_vector(keys: dict[str, DeviceKeys]) -> dict:
    alice = keys["alice"]
    proof = sign_identity_proof(alice.id_private, 1)
    cases = [
        ("valid", "alice", 1, proof),
        ("user_id", "alice", 2, proof),
        ("identity", "bob", 1, proof),
        ("proof", "alice", 1, flip_bit(proof, 4)),
        ("proof_not_canonical", "alice", 1, proof.rstrip("=") + "\n"),
        ("user_id_string", "alice", "1", proof),
    ]
    out = []
    for name, who, user_id, value in cases:
        expect = check(verify_identity_proof, keys[who].id_public, user_id, value)
        out.append(
            {"name": name, "identity": who, "user_id": user_id, "proof": value, "expect": expect}
        )
    assert [c["expect"] for c in out] == [True, False, False, False, "bad_request", "bad_request"]
    return {
        "description": (
            "alice's identity proof (§7.1) over e2ee-chat/v2/identity|1|<id_kid>; 'identity'"
            " names the keys.json entry whose id key verifies; expect is true, false or the"
            " error code raised"
        ),
        "message": f"e2ee-chat/v2/identity|1|{alice.id_kid}",
        "id_kid": alice.id_kid,
        "proof": proof,
        "cases": out,
    }


def device_cert_vector(keys: dict[str, DeviceKeys]) -> dict:
    alice, alice2, bob = keys["alice"], keys["alice2"], keys["bob"]
    certs = {
        "alice": sign_device_cert(alice.id_private, 1, alice.enc_kid, alice.sig_kid),
        "alice2": sign_device_cert(alice.id_private, 1, alice2.enc_kid, alice2.sig_kid),
        "bob": sign_device_cert(bob.id_private, 2, bob.enc_kid, bob.sig_kid),
    }
    cert = certs["alice2"]
    base = {"identity": "alice", "user_id": 1, "enc_kid": alice2.enc_kid, "sig_kid": alice2.sig_kid}
    cases = [
        ("valid", {}),
        ("user_id", {"user_id": 2}),
        ("enc_kid", {"enc_kid": alice.enc_kid}),
        ("sig_kid", {"sig_kid": alice.sig_kid}),
        ("kids_swapped", {"enc_kid": alice2.sig_kid, "sig_kid": alice2.enc_kid}),
        ("identity", {"identity": "bob"}),
        ("cert", {"cert": flip_bit(cert, 11)}),
        ("cert_of_other_device", {"cert": certs["alice"]}),
        ("enc_kid_upper", {"enc_kid": alice2.enc_kid.upper()}),
        ("cert_not_canonical", {"cert": cert.rstrip("=")}),
    ]
    out = []
    for name, change in cases:
        case = {**base, "cert": cert, **change}
        expect = check(
            verify_device_cert,
            keys[case["identity"]].id_public,
            case["user_id"],
            case["enc_kid"],
            case["sig_kid"],
            case["cert"],
        )
        out.append({"name": name, **case, "expect": expect})
    assert [c["expect"] for c in out] == [True] + [False] * 7 + ["bad_request"] * 2
    return {
        "description": (
            "device certificates (§1) by the identity keys of keys.json; 'certs' must all"
            " verify (device name -> cert under its user's identity); each case gives"
            " true, false or the error code raised"
        ),
        "message": (f"e2ee-chat/v2/device-cert|1|{alice2.enc_kid}|{alice2.sig_kid}|{alice.id_kid}"),
        "certs": certs,
        "cases": out,
    }


def identity_upgrade_vector(keys: dict[str, DeviceKeys]) -> dict:
    alice, bob = keys["alice"], keys["bob"]
    upgrade = sign_identity_upgrade(v1(alice), 1, alice.id_kid)
    base = {"device": "alice", "user_id": 1, "id_kid": alice.id_kid}
    cases = [
        ("valid", {}),
        ("user_id", {"user_id": 2}),
        ("id_kid", {"id_kid": bob.id_kid}),
        ("device", {"device": "bob"}),
        ("sig", {"upgrade": {**upgrade, "sig": flip_bit(upgrade["sig"], 2)}}),
        ("sig_kid", {"upgrade": {**upgrade, "sig_kid": bob.sig_kid}}),
        ("extra_field", {"upgrade": {**upgrade, "x": 1}}),
        ("missing_sig", {"upgrade": {"sig_kid": upgrade["sig_kid"]}}),
        ("sig_kid_upper", {"upgrade": {**upgrade, "sig_kid": upgrade["sig_kid"].upper()}}),
        ("sig_not_canonical", {"upgrade": {**upgrade, "sig": " " + upgrade["sig"]}}),
        ("not_an_object", {"upgrade": [upgrade["sig_kid"], upgrade["sig"]]}),
    ]
    out = []
    for name, change in cases:
        case = {**base, "upgrade": upgrade, **change}
        expect = check(
            verify_identity_upgrade,
            keys[case["device"]].sig_public,
            case["user_id"],
            case["id_kid"],
            case["upgrade"],
        )
        out.append({"name": name, **case, "expect": expect})
    assert [c["expect"] for c in out] == [True] + [False] * 5 + ["bad_request"] * 5
    return {
        "description": (
            "alice's v1 device signs that her new identity is hers (§7.5); 'device' names"
            " the keys.json device whose signing key verifies; each case gives true, false"
            " or the error code raised"
        ),
        "message": f"e2ee-chat/v2/identity-upgrade|1|{alice.id_kid}",
        "upgrade": upgrade,
        "cases": out,
    }


def link_code_vector(keys: dict[str, DeviceKeys]) -> dict:
    alice, alice2, bob = keys["alice"], keys["alice2"], keys["bob"]
    base = {
        "user_id": 1,
        "id_kid": alice.id_kid,
        "enc_kid": alice2.enc_kid,
        "sig_kid": alice2.sig_kid,
    }
    changes = [
        ("valid", {}),
        ("user_id", {"user_id": 2}),
        ("id_kid", {"id_kid": bob.id_kid}),
        ("enc_kid", {"enc_kid": bob.enc_kid}),
        ("sig_kid", {"sig_kid": bob.sig_kid}),
        ("kids_swapped", {"enc_kid": alice2.sig_kid, "sig_kid": alice2.enc_kid}),
    ]
    cases = []
    for name, change in changes:
        case = {**base, **change}
        code = compute_link_code(case["user_id"], case["id_kid"], case["enc_kid"], case["sig_kid"])
        cases.append({"name": name, **case, "code": code, "formatted": format_link_code(code)})
    codes = [c["code"] for c in cases]
    assert len(set(codes)) == len(codes)
    code = codes[0]
    typed = [
        (code, True),
        (format_link_code(code), True),
        (format_link_code(code).upper(), True),
        ("  " + code[:10] + " \t" + code[10:].upper() + " ", True),
        (code[:-1], False),
        (code[:-1] + ("0" if code[-1] != "0" else "1"), False),
        (code + "0", False),
        ("", False),
    ]
    for text, expect in typed:
        assert same_link_code(text, code) is expect
    return {
        "description": (
            "link codes (§7.2): first 20 hex of SHA-256 of"
            " e2ee-chat/v2/link-code|<user_id>|<id_kid>|<enc_kid>|<sig_kid>, shown in five"
            " groups of four; every single-field change gives another code; 'same' compares"
            " a typed code ignoring spaces and case"
        ),
        "cases": cases,
        "same": [{"typed": text, "code": code, "expect": expect} for text, expect in typed],
    }


def seal_wrap_payload(
    payload: bytes, *, user_id: int, keys: DeviceKeys, wrap_key: bytes, iv: bytes
) -> dict:
    """An id_wrap around arbitrary payload bytes (for the payload tampers)."""
    cipher = AES.new(wrap_key, AES.MODE_GCM, nonce=iv)
    cipher.update(id_wrap_aad(user_id, keys.enc_kid, keys.sig_kid))
    body, tag = cipher.encrypt_and_digest(payload)
    ek = PKCS1_OAEP.new(keys.enc_public, hashAlgo=SHA256).encrypt(wrap_key)
    return {"ek": b64encode(ek), "iv": b64encode(iv), "ct": b64encode(body + tag)}


def id_wrap_vector(keys: dict[str, DeviceKeys]) -> dict:
    alice, alice2, bob = keys["alice"], keys["alice2"], keys["bob"]
    trust = {
        "identities": {
            "1": {"id_kid": alice.id_kid, "verified": False},
            "2": {"id_kid": bob.id_kid, "verified": True},
        }
    }
    target = {"user_id": 1, "enc_public": alice2.enc_public, "sig_kid": alice2.sig_kid}
    id_wrap = make_id_wrap(alice.id_private, trust, **target, wrap_key=WRAP_KEY, iv=WRAP_IV)
    id_pkcs8 = der(alice.id_private)

    def payload_wrap(payload: bytes) -> dict:
        return seal_wrap_payload(payload, user_id=1, keys=alice2, wrap_key=WRAP_KEY, iv=WRAP_IV)

    def json_bytes(value: object) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    mixed = replace(alice2, sig_private=bob.sig_private)
    tampered = [
        {"name": "ek", "id_wrap": {**id_wrap, "ek": flip_bit(id_wrap["ek"], 3)}},
        {"name": "iv", "id_wrap": {**id_wrap, "iv": flip_bit(id_wrap["iv"])}},
        {"name": "iv_length", "id_wrap": {**id_wrap, "iv": b64encode(WRAP_IV[:8])}},
        {"name": "ct", "id_wrap": {**id_wrap, "ct": flip_bit(id_wrap["ct"])}},
        {"name": "ct_tag", "id_wrap": {**id_wrap, "ct": flip_bit(id_wrap["ct"], -1)}},
        {"name": "ct_not_canonical", "id_wrap": {**id_wrap, "ct": id_wrap["ct"].rstrip("=")}},
        {"name": "extra_field", "id_wrap": {**id_wrap, "x": 1}},
        {"name": "missing_field", "id_wrap": {"ek": id_wrap["ek"], "iv": id_wrap["iv"]}},
        {"name": "user_id", "id_wrap": id_wrap, "user_id": 2},
        {"name": "opened_by_bob", "id_wrap": id_wrap, "open_as": {"enc": "bob", "sig": "bob"}},
        {
            "name": "opener_sig_kid",
            "id_wrap": id_wrap,
            "open_as": {"enc": "alice2", "sig": "bob"},
        },
        {
            "name": "payload_extra_field",
            "id_wrap": payload_wrap(json_bytes({"id_pkcs8": id_pkcs8, "trust": trust, "x": 1})),
        },
        {
            "name": "payload_missing_trust",
            "id_wrap": payload_wrap(json_bytes({"id_pkcs8": id_pkcs8})),
        },
        {
            "name": "payload_bad_trust",
            "id_wrap": payload_wrap(
                json_bytes(
                    {
                        "id_pkcs8": id_pkcs8,
                        "trust": {"identities": {"1": {"id_kid": alice.id_kid, "verified": "yes"}}},
                    }
                )
            ),
        },
        {
            "name": "payload_bad_key",
            "id_wrap": payload_wrap(json_bytes({"id_pkcs8": b64encode(b"junk"), "trust": trust})),
        },
        {"name": "payload_not_json", "id_wrap": payload_wrap(b"{not json")},
        {"name": "payload_not_object", "id_wrap": payload_wrap(b"[1]")},
    ]
    assert mixed.enc_kid == alice2.enc_kid
    trust_cases = [
        ({"identities": {}}, True),
        (trust, True),
        (
            {"identities": {"7": {"id_kid": bob.id_kid, "verified": True, "note": "x"}}, "v": 2},
            True,
        ),
        (None, False),
        ([], False),
        ({}, False),
        ({"identities": []}, False),
        ({"identities": {"01": {"id_kid": bob.id_kid, "verified": True}}}, False),
        ({"identities": {"0": {"id_kid": bob.id_kid, "verified": True}}}, False),
        ({"identities": {"\u0661": {"id_kid": bob.id_kid, "verified": True}}}, False),
        ({"identities": {"bob": {"id_kid": bob.id_kid, "verified": True}}}, False),
        ({"identities": {"2": {"id_kid": bob.id_kid}}}, False),
        ({"identities": {"2": {"id_kid": bob.id_kid, "verified": "true"}}}, False),
        ({"identities": {"2": {"id_kid": bob.id_kid, "verified": 1}}}, False),
        ({"identities": {"2": {"id_kid": bob.id_kid.upper(), "verified": True}}}, False),
        ({"identities": {"2": [bob.id_kid, True]}}, False),
    ]
    for value, valid in trust_cases:
        assert (check(check_trust_state, value) == value) is valid, value
    return {
        "description": (
            "alice's device wraps her identity key and its trust state for her new device"
            " alice2 (§7.2 step 3) with a fixed wrap key and iv: ct is deterministic, ek is"
            " one randomized instance. alice2 must open it (the identity key's kid is"
            " id_kid, the trust state as given); every tampered case must be refused"
            " (open_as: the keys.json devices whose enc and sig keys open; user_id: the"
            " user id used); trust_cases are check_trust_state's verdicts"
        ),
        "approver": "alice",
        "recipient": "alice2",
        "user_id": 1,
        "id_kid": alice.id_kid,
        "trust": trust,
        "wrap_key": b64encode(WRAP_KEY),
        "iv": b64encode(WRAP_IV),
        "aad": f"e2ee-chat/v2/id-wrap|1|{alice2.enc_kid}|{alice2.sig_kid}",
        "deterministic_ct": id_wrap["ct"],
        "id_wrap": id_wrap,
        "tampered": tampered,
        "trust_cases": [{"trust": value, "valid": valid} for value, valid in trust_cases],
    }


def safety_number_vector(keys: dict[str, DeviceKeys]) -> dict:
    alice, bob = keys["alice"], keys["bob"]
    padded_kid = next(
        kid
        for kid in (hashlib.sha256(str(i).encode()).hexdigest() for i in range(1000))
        if any(group.startswith("0") for group in _groups(safety_digits(10, kid)))
    )
    pairs = [
        (1, alice.id_kid, 2, bob.id_kid),
        (2, bob.id_kid, 1, alice.id_kid),
        (1, bob.id_kid, 2, alice.id_kid),
        (10, padded_kid, 9, alice.id_kid),
        (9, alice.id_kid, 10, padded_kid),
        (1, alice.id_kid, 3, bob.id_kid),
    ]
    cases = []
    for user_a, kid_a, user_b, kid_b in pairs:
        number = safety_number(user_a, kid_a, user_b, kid_b)
        cases.append(
            {
                "user_a": user_a,
                "id_kid_a": kid_a,
                "user_b": user_b,
                "id_kid_b": kid_b,
                "digits_a": safety_digits(user_a, kid_a),
                "digits_b": safety_digits(user_b, kid_b),
                "number": number,
                "formatted": format_safety_number(number),
            }
        )
    assert cases[0]["number"] == cases[1]["number"] != cases[2]["number"] != cases[5]["number"]
    assert cases[3]["number"] == cases[4]["number"]
    assert cases[3]["number"].startswith(cases[3]["digits_b"])  # 9 < 10 numerically
    return {
        "description": (
            "safety numbers (§7.4): each user's 30 digits from SHA-256 of"
            " e2ee-chat/v2/safety|<user_id>|<id_kid>, the numerically smaller user id's"
            " first; 12 groups of 5 when formatted. Cases 4 and 5 (users 10 and 9) check"
            " numeric order and zero padding; changing a kid or a user id changes it"
        ),
        "cases": cases,
    }


def _groups(digits: str) -> list[str]:
    return [digits[i : i + 5] for i in range(0, len(digits), 5)]


# --- keystores ----------------------------------------------------------------------------


def keystore_v1_vector(keys: dict[str, DeviceKeys]) -> dict:
    """Only made when keystore_v1.json is missing: the file is the v1 code's."""
    user_id, device_id = DEVICES["alice"]
    record = lock_keystore(
        v1(keys["alice"]),
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
        "passphrase_nfc": PASSPHRASE_NFC,
        "wrong_passphrase": WRONG_PASSPHRASE,
        "salt": b64encode(SALT),
        "iv": b64encode(KEYSTORE_IV),
        "record": record,
    }


def seal_keystore(record: dict, secrets: dict, id_kid: str | None) -> dict:
    """``record`` with ``ct`` replaced by ``secrets`` sealed under the passphrase and the
    aad for ``id_kid`` (for the keystore tampers that decrypt but hold the wrong keys)."""
    kek = derive_kek(PASSPHRASE_NFC, SALT, KEYSTORE_ITERATIONS)
    cipher = AES.new(kek, AES.MODE_GCM, nonce=KEYSTORE_IV)
    cipher.update(keystore_aad(record["user_id"], record["device_id"], id_kid))
    body, tag = cipher.encrypt_and_digest(json.dumps(secrets, separators=(",", ":")).encode())
    return {**record, "ct": b64encode(body + tag)}


def keystore_v2_vector(keys: dict[str, DeviceKeys]) -> dict:
    alice, bob = keys["alice"], keys["bob"]
    user_id, device_id = DEVICES["alice"]
    record = lock_keystore(
        alice,
        user_id=user_id,
        username="alice",
        device_id=device_id,
        passphrase=PASSPHRASE_NFD,
        iterations=KEYSTORE_ITERATIONS,
        salt=SALT,
        iv=KEYSTORE_IV,
    )
    secrets = {
        "enc_pkcs8": der(alice.enc_private),
        "sig_pkcs8": der(alice.sig_private),
        "id_pkcs8": der(alice.id_private),
    }
    v1_secrets = {k: secrets[k] for k in ("enc_pkcs8", "sig_pkcs8")}
    v1_record = {k: v for k, v in record.items() if k != "id_kid"} | {"v": 1}
    wrong = "KeystoreError"
    tampered = [
        ("id_kid", {**record, "id_kid": bob.id_kid}, "WrongPassphrase"),
        ("id_kid_upper", {**record, "id_kid": alice.id_kid.upper()}, wrong),
        ("missing_id_kid", {k: v for k, v in record.items() if k != "id_kid"}, wrong),
        ("version_1", {**record, "v": 1}, "WrongPassphrase"),
        ("version_3", {**record, "v": 3}, wrong),
        ("user_id", {**record, "user_id": 2}, "WrongPassphrase"),
        ("device_id", {**record, "device_id": 12}, "WrongPassphrase"),
        ("ct", {**record, "ct": flip_bit(record["ct"])}, "WrongPassphrase"),
        ("enc_kid", {**record, "enc_kid": bob.enc_kid}, wrong),
        ("sig_kid", {**record, "sig_kid": bob.sig_kid}, wrong),
        ("v2_without_id_key", seal_keystore(record, v1_secrets, alice.id_kid), wrong),
        ("v1_with_id_key", seal_keystore(v1_record, secrets, None), wrong),
        (
            "id_key_is_sig_key",
            seal_keystore(
                {**record, "id_kid": alice.sig_kid},
                {**secrets, "id_pkcs8": secrets["sig_pkcs8"]},
                alice.sig_kid,
            ),
            wrong,
        ),
        (
            "id_kid_not_the_key",
            seal_keystore({**record, "id_kid": bob.id_kid}, secrets, bob.id_kid),
            wrong,
        ),
    ]
    return {
        "description": (
            "alice's v2 keystore with her identity key, fixed salt and iv: locking is"
            " deterministic; the NFD and NFC passphrases unlock it to her three keys; each"
            " tampered record is refused with the error class named (WrongPassphrase: the"
            " decryption fails; KeystoreError: anything else, never WrongPassphrase)"
        ),
        "device": "alice",
        "passphrase_nfd": PASSPHRASE_NFD,
        "passphrase_nfc": PASSPHRASE_NFC,
        "wrong_passphrase": WRONG_PASSPHRASE,
        "salt": b64encode(SALT),
        "iv": b64encode(KEYSTORE_IV),
        "aad": f"e2ee-chat/v2/keystore|{user_id}|{device_id}|{alice.id_kid}",
        "record": record,
        "tampered": [
            {"name": name, "record": value, "error": error} for name, value, error in tampered
        ],
    }


# --- roster chains ------------------------------------------------------------------------

ROSTER_TITLE = "Projekt 🚀 Ω"
CREATED = "2024-05-01T12:00:{:02d}Z"


def roster_devices(keys: dict[str, DeviceKeys]) -> tuple[dict, dict]:
    """What a reader knows of the signers: user id -> certified devices, and identities.
    User 1 also lists a rogue device (bob's keys) certified by bob's identity, not hers."""

    def entry(device: DeviceKeys, id_key, user_id: int) -> dict:
        return {
            "enc_kid": device.enc_kid,
            "sig_kid": device.sig_kid,
            "sig_spki": b64encode(device.sig_spki),
            "cert": sign_device_cert(id_key, user_id, device.enc_kid, device.sig_kid),
        }

    alice, alice2, bob = keys["alice"], keys["alice2"], keys["bob"]
    devices = {
        "1": [
            entry(alice, alice.id_private, 1),
            entry(alice2, alice.id_private, 1),
            entry(bob, bob.id_private, 1),  # rogue: not certified by alice's identity
        ],
        "2": [entry(bob, bob.id_private, 2)],
    }
    identities = {"1": b64encode(alice.id_spki), "2": b64encode(bob.id_spki)}
    return devices, identities


def served(record: dict, n: int) -> dict:
    return {**record, "created": CREATED.format(n)}


def roster_chain(keys: dict[str, DeviceKeys]) -> list[dict]:
    alice, alice2, bob = keys["alice"], keys["alice2"], keys["bob"]
    steps = [
        (alice, "create", [1, 2, 3], 1, ROSTER_TITLE),
        (alice, "add", [4, 5], 1, None),
        (bob, "title", [], 2, "Renamed"),
        (alice, "remove", [3], 1, None),
        (alice, "leave", [1], 1, None),  # owner leaves: bob (joined at 0) takes over
        (bob, "add", [1, 3], 2, None),  # alice and carol come back
        (alice2, "title", [], 1, "Back again"),  # signed by alice's second device
        (bob, "leave", [2], 2, None),  # owner leaves: dave (joined at 1, lowest id) takes over
    ]
    records, prev = [], roster.GENESIS
    for n, (device, op, subjects, by, title) in enumerate(steps):
        record = roster.make_record(
            device, gid=GID, n=n, prev=prev, op=op, subjects=subjects, by=by, title=title
        )
        records.append(served(record, n))
        prev = record["hash"]
    return records


def rehash(record: dict, gid: str = GID) -> dict:
    return {**record, "hash": roster.record_hash(gid, record)}


def field_tampers(record: dict, keys: dict[str, DeviceKeys]) -> list[tuple[str, dict]]:
    """One changed field each: raw (the hash left as it was) and, for the hashed fields,
    re-hashed as anyone can (so only the signature can catch it)."""
    other_op = {"create": "add", "add": "remove", "remove": "add", "leave": "title"}
    other_op["title"] = "leave"
    subjects = record["subjects"]
    changed_subjects = subjects[:-1] if len(subjects) > 1 else sorted({*subjects, 99})
    other_sig_kid = (
        keys["alice2"].sig_kid
        if record["sig_kid"] != keys["alice2"].sig_kid
        else keys["alice"].sig_kid
    )
    changes = {
        "n": record["n"] + 1,
        "prev": flip_hex(record["prev"]),
        "op": other_op[record["op"]],
        "subjects": changed_subjects,
        "by": 2 if record["by"] != 2 else 1,
        "title": None if record["title"] is not None else "x",
        "sig_kid": other_sig_kid,
        "sig": flip_bit(record["sig"], 17),
        "hash": flip_hex(record["hash"]),
    }
    out = [(field, {**record, field: value}) for field, value in changes.items()]
    for field in ("n", "prev", "op", "subjects", "by", "title", "sig"):
        out.append((f"{field}_rehashed", rehash({**record, field: changes[field]})))
    return out


def rule_tampers(keys: dict[str, DeviceKeys], chain: list[dict]) -> list[tuple]:
    """Well-formed, hashed and signed records that the rules refuse (or whose signer is
    not an acceptable device of ``by``): (name, prefix, tail)."""
    alice, alice2, bob = keys["alice"], keys["alice2"], keys["bob"]

    def at(index: int, device: DeviceKeys, op: str, subjects, by: int, title=None, gid=GID):
        prev = roster.GENESIS if index == 0 else chain[index - 1]["hash"]
        record = roster.make_record(
            device, gid=gid, n=index, prev=prev, op=op, subjects=subjects, by=by, title=title
        )
        return served(record, index)

    closed = []
    for n, (op, subjects, title) in enumerate(
        [("create", [1], None), ("leave", [1], None), ("title", [], "after")]
    ):
        prev = roster.GENESIS if n == 0 else closed[-1]["hash"]
        closed.append(
            served(
                roster.make_record(
                    alice, gid=GID, n=n, prev=prev, op=op, subjects=subjects, by=1, title=title
                ),
                n,
            )
        )
    return [
        ("first_not_create", 0, [at(0, alice, "add", [1, 2], 1)]),
        ("create_without_creator", 0, [at(0, alice, "create", [2, 3], 1)]),
        ("create_again", 1, [at(1, alice, "create", [1, 4], 1)]),
        ("add_by_non_owner", 1, [at(1, bob, "add", [4], 2)]),
        ("add_member", 1, [at(1, alice, "add", [2], 1)]),
        ("add_nobody", 1, [at(1, alice, "add", [], 1)]),
        ("add_with_title", 1, [at(1, alice, "add", [4], 1, "t")]),
        ("title_with_subjects", 2, [at(2, bob, "title", [2], 2, "t")]),
        ("title_null", 2, [at(2, bob, "title", [], 2)]),
        ("remove_owner", 3, [at(3, alice, "remove", [1], 1)]),
        ("remove_non_member", 3, [at(3, alice, "remove", [9], 1)]),
        ("remove_by_non_owner", 3, [at(3, bob, "remove", [3], 2)]),
        ("leave_naming_another", 4, [at(4, alice, "leave", [2], 1)]),
        ("leave_by_non_member", 5, [at(5, alice, "leave", [1], 1)]),
        ("title_after_leaving", 5, [at(5, alice2, "title", [], 1, "t")]),
        ("signed_by_another_users_device", 2, [at(2, alice, "title", [], 2, "t")]),
        ("signed_by_uncertified_device", 1, [at(1, bob, "add", [4], 1)]),
        ("signed_for_another_group", 1, [at(1, alice, "add", [4], 1, gid=OTHER_GID)]),
        (
            "signed_for_another_group_rehashed",
            1,
            [rehash(at(1, alice, "add", [4], 1, gid=OTHER_GID))],
        ),
        ("closed_group", 0, closed),
    ]


def shape_tampers(chain: list[dict]) -> list[tuple[str, int, dict]]:
    record = chain[2]
    without = {k: v for k, v in record.items() if k != "sig_kid"}
    return [
        ("extra_field", 2, {**record, "x": 1}),
        ("missing_field", 2, without),
        ("n_string", 2, {**record, "n": "2"}),
        ("n_negative", 2, {**record, "n": -1}),
        ("prev_upper", 2, {**record, "prev": record["prev"].upper()}),
        ("op_unknown", 2, {**record, "op": "rename"}),
        ("subjects_unsorted", 0, {**chain[0], "subjects": [3, 2, 1]}),
        ("subjects_repeated", 0, {**chain[0], "subjects": [1, 2, 2, 3]}),
        ("subjects_not_ids", 0, {**chain[0], "subjects": [0, 1, 2]}),
        ("subjects_not_a_list", 2, {**record, "subjects": None}),
        ("by_string", 2, {**record, "by": "2"}),
        ("title_empty", 2, {**record, "title": ""}),
        ("title_too_long", 2, {**record, "title": "x" * (roster.MAX_TITLE_CHARS + 1)}),
        ("title_not_a_string", 2, {**record, "title": 5}),
        ("sig_not_canonical", 2, {**record, "sig": record["sig"].rstrip("=")}),
        ("sig_empty", 2, {**record, "sig": ""}),
        ("created_not_a_string", 2, {**record, "created": 5}),
    ]


def roster_vector(keys: dict[str, DeviceKeys]) -> dict:
    chain = roster_chain(keys)
    devices, identities = roster_devices(keys)
    signing_key = roster_signing_key(devices, identities)
    states, state = [], roster.RosterState(gid=GID)
    for record in chain:
        roster.verify_record(state, record, signing_key, served=True)
        states.append(
            {
                "n": state.n,
                "head": state.head,
                "members": sorted(state.members),
                "owner": state.owner,
                "title": state.title,
                "closed": state.closed,
            }
        )
    final = roster.verify_chain(GID, chain, signing_key)
    assert final.to_json() == state.to_json()
    assert [s["owner"] for s in states] == [1, 1, 1, 1, 2, 2, 2, 4]

    def outcome(gid: str, records: list[dict]) -> str:
        try:
            roster.verify_chain(gid, records, roster_signing_key(devices, identities))
        except roster.RosterError as exc:
            return exc.code
        return "ok"

    tampered = []
    for index, record in enumerate(chain):
        for name, changed in field_tampers(record, keys):
            tampered.append({"name": f"{index}.{name}", "prefix": index, "tail": [changed]})
    for name, prefix, tail in rule_tampers(keys, chain):
        tampered.append({"name": name, "prefix": prefix, "tail": tail})
    for name, prefix, changed in shape_tampers(chain):
        tampered.append({"name": name, "prefix": prefix, "tail": [changed]})
    for case in tampered:
        case["error"] = outcome(GID, chain[: case["prefix"]] + case["tail"])
        assert case["error"] != "ok", case["name"]
    tampered.append(
        {
            "name": "gid",
            "gid": OTHER_GID,
            "prefix": len(chain),
            "tail": [],
            "error": outcome(OTHER_GID, chain),
        }
    )
    accepted = [
        {"name": "created", "prefix": 3, "tail": [{**chain[3], "created": "2030-01-01T00:00:00Z"}]},
        {
            "name": "created_absent",
            "prefix": 3,
            "tail": [{k: v for k, v in chain[3].items() if k != "created"}],
        },
    ]
    for case in accepted:
        assert outcome(GID, chain[: case["prefix"]] + case["tail"]) == "ok"
    heads = [record["hash"] for record in chain]
    member_at = [
        (3, 2, True),
        (3, 3, False),
        (3, 5, True),
        (1, 3, True),
        (1, 4, False),
        (1, 5, True),
        (2, 7, False),
        (4, 0, False),
        (4, 1, True),
        (6, 7, False),
    ]
    for user, index, expect in member_at:
        assert final.member_at(user, heads[index]) is expect
    assert final.member_at(1, roster.GENESIS) is False
    return {
        "description": (
            "a group's roster chain (§8) made by Python: create, add, title, remove, leave by"
            " the owner (hand-over to bob), add, title from alice's second device, leave by"
            " the owner (hand-over to dave: lowest joining n, then smallest id). 'devices'"
            " and 'identities' say which keys may sign for whom: a record's key is the"
            " signing key of the device of 'by' holding sig_kid whose cert verifies under"
            " her identity (user 1's third device is certified by bob's identity, so it"
            " may not). 'states' is the state after each record; 'final' its persisted"
            " form. Each tampered case verifies records[:prefix] + tail under gid (default"
            " the vector's) and must fail with 'error'; 'accepted' cases change only what"
            " is not signed and must verify"
        ),
        "gid": GID,
        "devices": devices,
        "identities": identities,
        "records": chain,
        "states": states,
        "final": final.to_json(),
        "member_at": [
            {"user": user, "head": heads[index], "expect": expect}
            for user, index, expect in member_at
        ]
        + [{"user": 1, "head": roster.GENESIS, "expect": False}],
        "tampered": tampered,
        "accepted": accepted,
    }


# --- ordering -----------------------------------------------------------------------------

A, B, A2 = "a" * 64, "b" * 64, "c" * 64


def cmid(i: int) -> str:
    return str(uuid.UUID(int=i, version=4))


def msg(id_: int, seq: int, sender: int, cm: int, kid: str, n: int | None, v: int = 2) -> dict:
    return {
        "id": id_,
        "seq": seq,
        "sender_id": sender,
        "client_msg_id": cmid(cm),
        "sig_kid": kid,
        "v": v,
        "n": n,
    }


ORDERING_SCENARIOS = {
    "forwards": [
        ("judge", msg(1, 1, 1, 1, A, None, v=1)),
        ("judge", msg(2, 2, 2, 2, B, None, v=1)),
        ("judge", msg(3, 3, 1, 3, A, 1)),
        ("judge", msg(4, 4, 2, 4, B, 1)),
        ("judge", msg(5, 5, 1, 5, A, 2)),
        ("judge", msg(5, 5, 1, 5, A, 2)),  # delivered twice: the recorded verdict
        ("judge", msg(5, 6, 1, 5, A, 2)),  # the same id at another seq
        ("judge", msg(6, 6, 1, 3, A, 1)),  # message 3 replayed under a new id
        ("persist", None),
        ("judge", msg(7, 7, 1, 7, A, 4)),
        ("judge", msg(8, 8, 1, 8, A, 3)),  # n went down: out of order
        ("judge", msg(9, 7, 2, 9, B, 2)),  # another message at a seq already judged
        ("judge", msg(10, 9, 2, 10, B, None, v=1)),  # a v1 message after v2 ones
        ("judge", msg(11, 10, 1, 11, A2, 1)),  # alice's other device counts on its own
        ("judge", msg(12, 11, 2, 12, B, 2)),
        ("judge", msg(12, 11, 1, 12, B, 2)),  # the same id under another sender
        ("is_rollback", 11),
        ("is_rollback", 10),
        ("verdict_of", 8),
        ("verdict_of", 99),
    ],
    "backwards": [
        ("judge", msg(20, 20, 1, 20, A, 12)),
        ("judge", msg(19, 19, 2, 19, B, 4)),
        ("judge", msg(18, 18, 1, 18, A, 11)),
        ("judge", msg(17, 17, 1, 17, A, 13)),  # n above a later seq's n
        ("judge", msg(16, 16, 1, 16, A, 10)),
        ("judge", msg(15, 15, 1, 15, A, 10)),  # the same n as a later seq
        ("judge", msg(14, 14, 1, 14, A2, 50)),  # alice's other device counts on its own
        ("judge", msg(13, 13, 1, 13, A, 9)),
        ("is_rollback", 20),
    ],
    "replay_loaded_first": [
        ("judge", msg(30, 30, 1, 3, A, 3)),  # a copy of message 3 (n 3) served as newest
        ("judge", msg(29, 29, 1, 29, A, 29)),  # genuine, but now above a later n
        ("judge", msg(15, 15, 2, 15, B, 1)),
        ("judge", msg(3, 3, 1, 3, A, 3)),  # the original of 30
        ("judge", msg(2, 2, 1, 2, A, 2)),
    ],
    "v1_loaded_first": [
        ("judge", msg(20, 20, 2, 20, B, None, v=1)),
        ("judge", msg(19, 19, 1, 19, A, None, v=1)),
        ("take_changed", None),
        ("judge", msg(18, 18, 1, 18, A, 5)),  # a v2 message below them: they are replays
        ("take_changed", None),
        ("take_changed", None),
        ("verdict_of", 20),
        ("judge", msg(20, 20, 2, 20, B, None, v=1)),
        ("judge", msg(17, 17, 2, 17, B, None, v=1)),  # below every v2 message: fine
        ("judge", msg(21, 21, 2, 20, B, None, v=1)),
        ("persist", None),
        ("judge", msg(16, 16, 1, 16, A, 4)),
        ("take_changed", None),
    ],
    "rollback_and_reload": [
        ("judge", msg(1, 1, 1, 1, A, 1)),
        ("judge", msg(2, 2, 2, 2, B, 1)),
        ("judge", msg(3, 3, 1, 3, A, 2)),
        ("judge", msg(4, 4, 2, 4, B, 2)),
        ("judge", msg(5, 5, 1, 5, A, 3)),
        ("is_rollback", 5),
        ("is_rollback", 3),
        ("forget_from", 4),
        ("is_rollback", 3),
        ("verdict_of", 4),
        ("judge", msg(40, 4, 2, 40, B, 3)),  # what the server serves at seq 4 now
        ("judge", msg(5, 5, 1, 5, A, 3)),
        ("persist", None),
        ("judge", msg(6, 6, 1, 6, A, 3)),  # n 3 again from alice's device
    ],
}


def ordering_vector() -> dict:
    scenarios = []
    for name, steps in ORDERING_SCENARIOS.items():
        ledger = ordering.Ledger()
        out = []
        for op, arg in steps:
            if op == "judge":
                out.append({"judge": arg, "verdict": ledger.judge(**arg)})
            elif op == "is_rollback":
                out.append({"is_rollback": arg, "expect": ledger.is_rollback(arg)})
            elif op == "verdict_of":
                out.append({"verdict_of": arg, "expect": ledger.verdict_of(arg)})
            elif op == "take_changed":
                out.append({"take_changed": True, "expect": ledger.take_changed()})
            elif op == "forget_from":
                ledger.forget_from(arg)
                out.append({"forget_from": arg})
            else:
                ledger = ordering.Ledger.from_json(json.loads(json.dumps(ledger.to_json())))
                out.append({"persist": True})
        scenarios.append({"name": name, "steps": out, "ledger": ledger.to_json()})
    return {
        "description": (
            "order and replay (§9): each scenario runs its steps on a fresh Ledger —"
            " judge (the verdict it must get), is_rollback(last_seq), verdict_of(id),"
            " take_changed() (ids whose verdict a later judgement changed), forget_from(seq),"
            " persist (to_json, through JSON text, from_json) — and ends with 'ledger' as"
            " to_json gives it"
        ),
        "scenarios": scenarios,
    }


# --- attachments (§10.2) ------------------------------------------------------------------

FILE_KEY = bytes(range(160, 192))
FILE_PREFIX = bytes(range(8, 16))
FILE_BLOB_ID = "Zk9vQmFyQmF6UXV4MTIzNA"
FILE_SIZES = {"empty": 0, "one_chunk": 65536, "two_chunks": 70000, "three_chunks": 140000}
PADME_CASES = [0, 1, 255, 256, 257, 1000, 65535, 65536, 65537, 70000, 10**6, 2**20, 2**20 + 1]
PADME_CASES += [5 * 2**20, 100 * 2**20 - 1, 100 * 2**20, 2**31 + 1, 2**32 + 1, 2**53 - 1]


def pattern(size: int) -> bytes:
    """The vectors' file of ``size`` bytes: byte i is (i * 7 + 3) mod 251."""
    return bytes((i * 7 + 3) % 251 for i in range(size))


def sealed_chunk(data: bytes, index: int, last: bool) -> bytes:
    """Chunk ``index`` of the vectors' key and prefix, padded data as given."""
    nonce = attachments.file_chunk_nonce(FILE_PREFIX, index)
    cipher = AES.new(FILE_KEY, AES.MODE_GCM, nonce=nonce, mac_len=16)
    cipher.update(attachments.file_chunk_aad(index, last))
    body, tag = cipher.encrypt_and_digest(data)
    return body + tag


def assemble(blob: bytes, parts: list) -> bytes:
    """A tampered blob from ``parts``: ``[start, end]`` slices of ``blob`` and
    ``{"b64": …}`` literals (the same reading as the tests')."""
    return b"".join(
        b64decode(part["b64"]) if isinstance(part, dict) else blob[part[0] : part[1]]
        for part in parts
    )


def refusal(meta: dict, blob: bytes) -> str:
    """The code the Python decryptor refuses ``blob`` with (``"ok"`` if it opens)."""
    try:
        attachments.decrypt_file(meta, blob)
    except attachments.FileRefused as exc:
        return exc.code
    return "ok"


def attachments_vector() -> dict:
    files, blobs = {}, {}
    for name, size in FILE_SIZES.items():
        data = pattern(size)
        blob, encryptor = attachments.encrypt_file(data, FILE_KEY, FILE_PREFIX)
        meta = {
            "blob": FILE_BLOB_ID,
            "key": b64encode(FILE_KEY),
            "prefix": b64encode(FILE_PREFIX),
            "size": size,
            "sha256": encryptor.sha256,
            "name": f"{name}.bin",
            "mime": "application/octet-stream",
        }
        assert attachments.decrypt_file(meta, blob) == data
        blobs[name] = blob
        files[name] = {
            "file": meta,
            "padded": encryptor.padded,
            "blob_size": len(blob),
            "blob_sha256": hashlib.sha256(blob).hexdigest(),
        }
    c = attachments.FILE_CHUNK + attachments.FILE_TAG
    two, three = files["two_chunks"], files["three_chunks"]
    two_end, three_end = two["blob_size"], three["blob_size"]
    chunk1 = pattern(70000)[65536:] + bytes(two["padded"] - 70000)
    bad_pad = bytearray(chunk1)
    bad_pad[-1] = 1

    def lit(data: bytes) -> dict:
        return {"b64": b64encode(data)}

    def meta_of(name: str, **change) -> dict:
        return {**files[name]["file"], **change}

    sha_two = two["file"]["sha256"]
    cases = [
        ("swapped_chunks", "three_chunks", {}, [[c, 2 * c], [0, c], [2 * c, three_end]]),
        ("swapped_uneven_chunks", "two_chunks", {}, [[c, two_end], [0, c]]),
        ("truncated_last_chunk_dropped", "two_chunks", {}, [[0, c]]),
        ("truncated_mid_chunk", "two_chunks", {}, [[0, two_end - 1]]),
        ("truncated_empty", "empty", {}, []),
        (
            "last_flag_cleared_on_last",
            "two_chunks",
            {},
            [[0, c], lit(sealed_chunk(chunk1, 1, False))],
        ),
        (
            "last_flag_set_on_first",
            "two_chunks",
            {},
            [lit(sealed_chunk(pattern(65536 + 3)[3:], 0, True)), [c, two_end]],
        ),
        ("last_flag_cleared_single", "empty", {}, [lit(sealed_chunk(bytes(256), 0, False))]),
        ("altered_padding", "two_chunks", {}, [[0, c], lit(sealed_chunk(bytes(bad_pad), 1, True))]),
        ("altered_padding_empty", "empty", {}, [lit(sealed_chunk(b"\x01" + bytes(255), 0, True))]),
        ("flipped_ciphertext_bit", "one_chunk", {}, [[0, 100], lit(b"\x00"), [101, c]]),
        ("wrong_sha256", "two_chunks", {"sha256": flip_hex(sha_two)}, [[0, two_end]]),
        ("wrong_size_minus_one", "two_chunks", {"size": 69999}, [[0, two_end]]),
        ("wrong_size_plus_one", "two_chunks", {"size": 70001}, [[0, two_end]]),
        ("wrong_size_other_blob_length", "two_chunks", {"size": 140000}, [[0, two_end]]),
        ("wrong_length_byte_added", "two_chunks", {}, [[0, two_end], lit(b"\x00")]),
        ("wrong_key", "two_chunks", {"key": b64encode(bytes(32))}, [[0, two_end]]),
        ("wrong_prefix", "two_chunks", {"prefix": b64encode(bytes(8))}, [[0, two_end]]),
        ("meta_key_short", "empty", {"key": b64encode(bytes(31))}, [[0, 272]]),
        ("meta_prefix_not_canonical", "empty", {"prefix": "AAAAAAAAAAE"}, [[0, 272]]),
        ("meta_size_negative", "empty", {"size": -1}, [[0, 272]]),
        ("meta_size_too_large", "empty", {"size": attachments.MAX_FILE_BYTES + 1}, [[0, 272]]),
        ("meta_size_not_integer", "empty", {"size": "0"}, [[0, 272]]),
        (
            "meta_sha256_uppercase",
            "empty",
            {"sha256": files["empty"]["file"]["sha256"].upper()},
            [[0, 272]],
        ),
    ]
    if pattern(70000)[-1] == 0:
        raise AssertionError("the pattern's last byte must not be zero")
    tampered = []
    for name, base, change, parts in cases:
        meta = meta_of(base, **change)
        blob = assemble(blobs[base], parts)
        tampered.append(
            {"name": name, "base": base, "file": meta, "parts": parts, "error": refusal(meta, blob)}
        )
    assert all(case["error"] != "ok" for case in tampered)
    payload = {
        "type": "file",
        "file": {
            **files["two_chunks"]["file"],
            "width": 800,
            "height": 600,
            "thumb": b64encode(bytes(range(100))),
            "mime": "image/jpeg",
        },
        "text": "a caption ✓",
        "reply_to": {"sender_id": 2, "client_msg_id": CLIENT_MSG_ID},
    }
    base_file = payload["file"]
    bad_payloads = [
        ("not_file_type", {**payload, "type": "text"}),
        ("blob_short", {**payload, "file": {**base_file, "blob": "A" * 21}}),
        ("blob_not_urlsafe", {**payload, "file": {**base_file, "blob": "A" * 21 + "+"}}),
        ("key_missing", {**payload, "file": {k: v for k, v in base_file.items() if k != "key"}}),
        ("name_empty", {**payload, "file": {**base_file, "name": ""}}),
        ("name_too_long", {**payload, "file": {**base_file, "name": "é" * 256}}),
        ("mime_no_subtype", {**payload, "file": {**base_file, "mime": "image"}}),
        ("mime_too_long", {**payload, "file": {**base_file, "mime": "a/" + "b" * 254}}),
        ("mime_with_space", {**payload, "file": {**base_file, "mime": "text/html; charset=utf-8"}}),
        ("width_zero", {**payload, "file": {**base_file, "width": 0}}),
        ("height_too_big", {**payload, "file": {**base_file, "height": 65536}}),
        ("width_float", {**payload, "file": {**base_file, "width": 1.5}}),
        ("thumb_too_big", {**payload, "file": {**base_file, "thumb": b64encode(bytes(16385))}}),
        ("thumb_empty", {**payload, "file": {**base_file, "thumb": ""}}),
        ("thumb_not_canonical", {**payload, "file": {**base_file, "thumb": "AB=="}}),
        ("text_too_long", {**payload, "text": "x" * 16001}),
        ("text_not_string", {**payload, "text": 5}),
        ("reply_to_bad", {**payload, "reply_to": {"sender_id": 2}}),
        ("file_not_object", {**payload, "file": "x"}),
    ]
    largest = {**payload, "text": "ü" * 16000}
    largest["file"] = {**base_file, "thumb": b64encode(bytes(16384)), "width": 65535, "height": 1}
    largest["file"]["name"] = "é" * 255
    smallest = {"type": "file", "file": {**files["empty"]["file"], "mime": "a/b", "name": "x"}}
    for valid in (payload, largest, smallest):
        attachments.validate_file_payload(valid)
    for name, bad in bad_payloads:
        try:
            attachments.validate_file_payload(bad)
        except attachments.FileRefused as exc:
            assert exc.code == "bad_meta", name
        else:
            raise AssertionError(f"{name} was accepted")
    names = [
        "photo.jpg",
        "../../etc/passwd",
        "..\\..\\boot.ini",
        "  .hidden. . ",
        "Cafe\u0301.txt",
        "evil\u202egpj.exe",
        "tab\there\nnewline\x00nul.txt",
        "...",
        "",
        "/",
        "a" * 130 + ".tar.gz",
        "b" * 130,
        "c" * 119 + ".verylongextension1234",
        "\u200bzero\ufeffwidth.png",
        "日本語のファイル名.pdf",
        "emoji 👋🏽.png",
        "x" * 118 + " ." + "md",
    ]
    return {
        "description": (
            "encrypted attachments (§10.2). padme: [L, P]; blob_size: [size, blob length];"
            " is_blob_size: [length, bool]; aad: [i, last, string]; nonce: [prefix b64, i,"
            " nonce b64]. files: each made with the given key and prefix from the pattern file"
            " (byte i is (i * 7 + 3) mod 251); every implementation must reproduce its blob"
            " (blob_sha256) and open it. tampered: the blob is parts joined — [start, end]"
            " slices of the base file's blob and {b64} literals — read with 'file'; every"
            " implementation must refuse it with 'error', fed whole or in pieces."
            " payloads: 'valid' passes validate_file_payload, each of 'invalid' is bad_meta."
            " clean_file_name: [name, cleaned]."
        ),
        "padme": [[n, attachments.padme(n)] for n in PADME_CASES],
        "blob_size": [[n, attachments.blob_size(n)] for n in PADME_CASES if n <= 2**31 + 1],
        "is_blob_size": [
            [n, attachments.is_blob_size(n)]
            for n in [
                0,
                271,
                272,
                273,
                65552,
                65553,
                71680 + 16,
                71712,
                71713,
                attachments.blob_size(attachments.MAX_FILE_BYTES),
                attachments.blob_size(attachments.MAX_FILE_BYTES) + 16,
                attachments.blob_size(attachments.MAX_FILE_BYTES + 1),
            ]
        ],
        "aad": [
            [i, last, attachments.file_chunk_aad(i, last).decode()]
            for i, last in [(0, False), (0, True), (1, True), (1599, False), (2**32 - 1, True)]
        ],
        "nonce": [
            [b64encode(FILE_PREFIX), i, b64encode(attachments.file_chunk_nonce(FILE_PREFIX, i))]
            for i in (0, 1, 256, 2**32 - 1)
        ],
        "key": b64encode(FILE_KEY),
        "prefix": b64encode(FILE_PREFIX),
        "files": files,
        "tampered": tampered,
        "payloads": {
            "valid": [payload, largest, smallest],
            "invalid": [[name, bad] for name, bad in bad_payloads],
        },
        "clean_file_name": [[name, attachments.clean_file_name(name)] for name in names],
    }


def main() -> None:
    args = sys.argv[1:]
    force = "--force" in args
    keys = load_keys(new="--new-keys" in args)
    write("device_proof.json", _device_proof_vector(keys), force)
    write("envelope_v1.json", envelope_v1_vector(keys), force)
    write("keystore_v1.json", keystore_v1_vector(keys), force)
    write("envelope_v2.json", envelope_v2_vector(keys), force)
    write("history_rewrap.json", history_rewrap_vector(keys), force)
    write("identity_proof.json", identity_proof_vector(keys), force)
    write("device_cert.json", device_cert_vector(keys), force)
    write("identity_upgrade.json", identity_upgrade_vector(keys), force)
    write("link_code.json", link_code_vector(keys), force)
    write("id_wrap.json", id_wrap_vector(keys), force)
    write("safety_number.json", safety_number_vector(keys), force)
    write("keystore_v2.json", keystore_v2_vector(keys), force)
    write("roster.json", roster_vector(keys), force)
    write("ordering.json", ordering_vector(), force)
    write("attachments.json", attachments_vector(), force)


def _device_proof_vector(keys: dict[str, DeviceKeys]) -> dict:
    alice = keys["alice"]
    return {
        "description": "alice's proof of possession; every implementation must verify it",
        "device": "alice",
        "user_id": 1,
        "enc_kid": alice.enc_kid,
        "sig_kid": alice.sig_kid,
        "proof": sign_device_proof(alice, 1),
    }


if __name__ == "__main__":
    main()
