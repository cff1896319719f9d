"""The wire protocol of PROTOCOL.md §1, §2, §6 and §7: keys, kids, proofs, message
envelopes (v2, and v1 as stored before the upgrade), identity keys, device certificates,
link codes, identity wraps and safety numbers.

Pure functions over bytes, strings and pycryptodome keys; no I/O. The browser twin is
``static/chat/protocol.js`` and keeps the same names in camelCase. Rosters (§8) are in
``roster.py`` and the order and replay rules (§9) in ``ordering.py``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from Crypto.Cipher import AES, PKCS1_OAEP
from Crypto.Hash import SHA256
from Crypto.PublicKey import RSA
from Crypto.PublicKey.RSA import RsaKey
from Crypto.Random import get_random_bytes
from Crypto.Signature import pss

from .errors import MessageTooLong, ProtocolError  # noqa: F401  (re-exported: protocol.ProtocolError)

ALLOWED_KEY_BITS = (2048, 3072, 4096)
DEFAULT_KEY_BITS = 3072
PUBLIC_EXPONENT = 65537
MAX_SPKI_BYTES = 1024
CONTENT_KEY_BYTES = 32
IV_BYTES = 12
TAG_BYTES = 16
MAX_TEXT_CHARS = 16000
ENVELOPE_FIELDS_V1 = frozenset({"v", "iv", "ct", "kc", "keys", "sig_kid", "sig"})
ENVELOPE_FIELDS = ENVELOPE_FIELDS_V1 | {"n", "head"}  # v2, what new sends carry
MAX_COUNTER = 2**53 - 1
LINK_CODE_CHARS = 20
ID_WRAP_FIELDS = frozenset({"ek", "iv", "ct"})

KEY_COMMITMENT_LABEL = b"e2ee-chat/v1/key-commitment"
_B64_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_KID_RE = re.compile(r"[0-9a-f]{64}")
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_USER_KEY_RE = re.compile(r"[1-9][0-9]*")
_UUID4_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


class OpenError(ProtocolError):
    """A message that cannot be unwrapped, committed, verified or decrypted."""

    def __init__(self, detail: str) -> None:
        super().__init__("bad_request", detail)


# --- encodings ---------------------------------------------------------------------------


def b64encode(data: bytes) -> str:
    """Standard-alphabet, padded base64."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, length: int | None = None) -> bytes:
    """Decode canonical padded standard base64, optionally of exactly ``length`` bytes.

    Anything else (whitespace, missing padding, URL-safe letters, non-zero trailing
    bits, a non-string, a wrong length) raises ``ProtocolError('bad_request')``.
    """
    if not isinstance(text, str) or not _B64_RE.fullmatch(text):
        raise ProtocolError("bad_request", "not canonical base64")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ProtocolError("bad_request", "not canonical base64") from exc
    if b64encode(data) != text:
        raise ProtocolError("bad_request", "not canonical base64")
    if length is not None and len(data) != length:
        raise ProtocolError("bad_request", f"expected {length} bytes of base64")
    return data


def is_kid(value: object) -> bool:
    """Whether ``value`` looks like a kid: 64 lowercase hex digits."""
    return isinstance(value, str) and _KID_RE.fullmatch(value) is not None


def new_client_msg_id() -> str:
    """A fresh lowercase UUID4."""
    return str(uuid.uuid4())


def is_client_msg_id(value: object) -> bool:
    """Whether ``value`` is a lowercase canonical UUID (the server's rule, §6)."""
    return isinstance(value, str) and _UUID_RE.fullmatch(value) is not None


def is_uuid4(value: object) -> bool:
    """Whether ``value`` is a lowercase canonical UUID4 (a group's ``gid``, §8)."""
    return isinstance(value, str) and _UUID4_RE.fullmatch(value) is not None


def is_counter(value: object) -> bool:
    """Whether ``value`` is a message counter ``n`` of §2: an integer 1..2^53-1."""
    return type(value) is int and 1 <= value <= MAX_COUNTER


def is_head(value: object) -> bool:
    """Whether ``value`` is an envelope ``head`` of §2: ``""`` or a record hash."""
    return value == "" or is_kid(value)


def _require_id(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError("bad_request", f"{name} must be an integer")
    return value


# --- keys --------------------------------------------------------------------------------


def compute_kid(spki_der: bytes) -> str:
    """The kid of a public key: hex SHA-256 of its SPKI DER."""
    return hashlib.sha256(spki_der).hexdigest()


def spki_of(key: RsaKey) -> bytes:
    """The canonical SPKI DER of ``key``'s public half."""
    return key.public_key().export_key("DER")


@lru_cache(maxsize=4096)
def _kid_of_numbers(n: int, e: int) -> str:
    return compute_kid(RSA.construct((n, e)).export_key("DER"))


def kid_of(key: RsaKey) -> str:
    """The kid of ``key``'s public half (as ``compute_kid(spki_of(key))``), remembered for
    the last few thousand keys so that checking many signatures by one key exports it once."""
    return _kid_of_numbers(key.n, key.e)


def import_public_key(spki_der: bytes) -> RsaKey:
    """Import a canonical SPKI DER RSA public key of 2048/3072/4096 bits with e = 65537.

    Raises ``ProtocolError('invalid_key')`` for anything else, including other
    encodings of an acceptable key (PKCS#1, PEM, a private key, non-canonical DER).
    """
    if not isinstance(spki_der, bytes) or not 0 < len(spki_der) <= MAX_SPKI_BYTES:
        raise ProtocolError("invalid_key", "not an SPKI DER public key")
    try:
        key = RSA.import_key(spki_der)
    except (ValueError, IndexError, TypeError) as exc:
        raise ProtocolError("invalid_key", "does not parse as an RSA key") from exc
    if key.has_private() or key.export_key("DER") != spki_der:
        raise ProtocolError("invalid_key", "not the canonical SPKI DER")
    if key.size_in_bits() not in ALLOWED_KEY_BITS:
        raise ProtocolError("invalid_key", "modulus must be 2048, 3072 or 4096 bits")
    if key.e != PUBLIC_EXPONENT:
        raise ProtocolError("invalid_key", "public exponent must be 65537")
    return key


@dataclass(frozen=True)
class DeviceKeys:
    """A device's two private keys: RSA-OAEP for encryption, RSA-PSS for signing; and the
    user's identity key (RSA-PSS, §7) once the device holds it (None on a v1 device)."""

    enc_private: RsaKey
    sig_private: RsaKey
    id_private: RsaKey | None = None

    @property
    def enc_spki(self) -> bytes:
        return spki_of(self.enc_private)

    @property
    def sig_spki(self) -> bytes:
        return spki_of(self.sig_private)

    @property
    def enc_kid(self) -> str:
        return compute_kid(self.enc_spki)

    @property
    def sig_kid(self) -> str:
        return compute_kid(self.sig_spki)

    @property
    def enc_public(self) -> RsaKey:
        return self.enc_private.public_key()

    @property
    def sig_public(self) -> RsaKey:
        return self.sig_private.public_key()

    @property
    def id_public(self) -> RsaKey | None:
        return None if self.id_private is None else self.id_private.public_key()

    @property
    def id_spki(self) -> bytes | None:
        return None if self.id_private is None else spki_of(self.id_private)

    @property
    def id_kid(self) -> str | None:
        return None if self.id_private is None else kid_of(self.id_private)

    def with_identity(self, id_private: RsaKey) -> DeviceKeys:
        """The same device keys holding ``id_private`` as the identity key."""
        checked = identity_key_from_pkcs8(id_private.export_key("DER", pkcs=8))
        if spki_of(checked) in (self.enc_spki, self.sig_spki):
            raise ProtocolError("invalid_key", "the identity key must differ from device keys")
        return replace(self, id_private=checked)


def _import_private(pkcs8: bytes) -> RsaKey:
    try:
        key = RSA.import_key(pkcs8)
    except (ValueError, IndexError, TypeError) as exc:
        raise ProtocolError("invalid_key", "not an RSA private key") from exc
    if not key.has_private():
        raise ProtocolError("invalid_key", "not an RSA private key")
    import_public_key(spki_of(key))
    return key


def identity_key_from_pkcs8(id_pkcs8: bytes) -> RsaKey:
    """Import an identity private key (PKCS#8 DER), checked like a public key; else
    ``invalid_key``."""
    return _import_private(id_pkcs8)


def device_keys_from_pkcs8(
    enc_pkcs8: bytes, sig_pkcs8: bytes, id_pkcs8: bytes | None = None
) -> DeviceKeys:
    """Import a device's PKCS#8 DER private keys (two, or three with the identity key);
    unusable keys, or two that are the same key, are ``invalid_key``."""
    keys = DeviceKeys(
        enc_private=_import_private(enc_pkcs8),
        sig_private=_import_private(sig_pkcs8),
        id_private=None if id_pkcs8 is None else _import_private(id_pkcs8),
    )
    kids = [keys.enc_kid, keys.sig_kid] + ([keys.id_kid] if keys.id_private else [])
    if len(set(kids)) != len(kids):
        raise ProtocolError("invalid_key", "the encryption, signing and identity keys must differ")
    return keys


def generate_device_keys(bits: int = DEFAULT_KEY_BITS) -> DeviceKeys:
    """Two fresh RSA key pairs of ``bits`` bits with e = 65537 (no identity key)."""
    if bits not in ALLOWED_KEY_BITS:
        raise ValueError(f"bits must be one of {ALLOWED_KEY_BITS}")
    return DeviceKeys(
        enc_private=RSA.generate(bits, e=PUBLIC_EXPONENT),
        sig_private=RSA.generate(bits, e=PUBLIC_EXPONENT),
    )


def generate_identity_key(bits: int = DEFAULT_KEY_BITS) -> RsaKey:
    """A fresh identity key pair (RSA-PSS, §7) of ``bits`` bits with e = 65537."""
    if bits not in ALLOWED_KEY_BITS:
        raise ValueError(f"bits must be one of {ALLOWED_KEY_BITS}")
    return RSA.generate(bits, e=PUBLIC_EXPONENT)


def pss_sign(key: RsaKey, message: bytes) -> bytes:
    """RSA-PSS (SHA-256, MGF1-SHA-256, salt 32) signature of ``message`` by ``key``."""
    return pss.new(key).sign(SHA256.new(message))


def pss_verify(key: RsaKey, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``key``'s RSA-PSS signature of ``message``."""
    try:
        pss.new(key).verify(SHA256.new(message), signature)
    except (ValueError, TypeError):
        return False
    return True


def _oaep(key: RsaKey) -> Any:
    return PKCS1_OAEP.new(key, hashAlgo=SHA256)


# --- device proof (§1) -------------------------------------------------------------------


def device_proof_message(user_id: int, enc_kid: str, sig_kid: str) -> bytes:
    """``e2ee-chat/v1/device|<user_id>|<enc_kid>|<sig_kid>`` as UTF-8."""
    _require_id(user_id, "user_id")
    if not (is_kid(enc_kid) and is_kid(sig_kid)):
        raise ProtocolError("bad_request", "kids must be 64 lowercase hex digits")
    return f"e2ee-chat/v1/device|{user_id}|{enc_kid}|{sig_kid}".encode()


def sign_device_proof(keys: DeviceKeys, user_id: int) -> str:
    """The base64 proof of possession for registering ``keys`` as ``user_id``'s device."""
    message = device_proof_message(user_id, keys.enc_kid, keys.sig_kid)
    return b64encode(pss_sign(keys.sig_private, message))


def verify_device_proof(
    sig_public: RsaKey, user_id: int, enc_kid: str, sig_kid: str, proof: str
) -> bool:
    """Whether ``proof`` (base64) is ``sig_public``'s signature of the device message.

    Malformed input (non-canonical base64, bad kids, non-integer id) raises
    ``ProtocolError('bad_request')``; a signature that does not verify returns False.
    """
    signature = b64decode(proof)
    return pss_verify(sig_public, device_proof_message(user_id, enc_kid, sig_kid), signature)


# --- message envelope (§2) ---------------------------------------------------------------


def message_aad(
    conversation_id: int, sender_id: int, client_msg_id: str, sig_kid: str, n: int, head: str
) -> str:
    """A of a v2 envelope (§2):
    ``e2ee-chat/v2/msg|<conversation_id>|<sender_id>|<client_msg_id>|<sig_kid>|<n>|<head>``."""
    _require_id(conversation_id, "conversation_id")
    _require_id(sender_id, "sender_id")
    if not is_client_msg_id(client_msg_id):
        raise ProtocolError("bad_request", "client_msg_id must be a lowercase UUID")
    if not is_kid(sig_kid):
        raise ProtocolError("bad_request", "sig_kid must be a kid")
    if not is_counter(n):
        raise ProtocolError("bad_request", "n must be an integer from 1 to 2^53-1")
    if not is_head(head):
        raise ProtocolError("bad_request", "head must be empty or a record hash")
    return f"e2ee-chat/v2/msg|{conversation_id}|{sender_id}|{client_msg_id}|{sig_kid}|{n}|{head}"


def message_aad_v1(conversation_id: int, sender_id: int, client_msg_id: str) -> str:
    """A of a v1 envelope: ``e2ee-chat/v1/msg|<conversation_id>|<sender_id>|<client_msg_id>``."""
    _require_id(conversation_id, "conversation_id")
    _require_id(sender_id, "sender_id")
    if not is_client_msg_id(client_msg_id):
        raise ProtocolError("bad_request", "client_msg_id must be a lowercase UUID")
    return f"e2ee-chat/v1/msg|{conversation_id}|{sender_id}|{client_msg_id}"


def envelope_aad(envelope: dict, conversation_id: int, sender_id: int, client_msg_id: str) -> str:
    """A of ``envelope`` by its own ``v``: v2 from its ``sig_kid``, ``n`` and ``head``."""
    if envelope.get("v") == 1:
        return message_aad_v1(conversation_id, sender_id, client_msg_id)
    return message_aad(
        conversation_id,
        sender_id,
        client_msg_id,
        envelope.get("sig_kid"),
        envelope.get("n"),
        envelope.get("head"),
    )


def signed_string(aad: str, iv: str, ct: str, kc: str) -> bytes:
    """S of §2 as UTF-8, built from the envelope's own base64 strings."""
    return f"{aad}|{iv}|{ct}|{kc}".encode()


def key_commitment(content_key: bytes) -> bytes:
    """HMAC-SHA256(K, "e2ee-chat/v1/key-commitment")."""
    return hmac.new(content_key, KEY_COMMITMENT_LABEL, hashlib.sha256).digest()


def text_message(text: str) -> dict:
    """The plaintext of a text message; longer than 16,000 characters (code points) is
    ``MessageTooLong`` (a ``ProtocolError('too_large')``)."""
    if not isinstance(text, str):
        raise ProtocolError("bad_request", "text must be a string")
    if len(text) > MAX_TEXT_CHARS:
        raise MessageTooLong(len(text), MAX_TEXT_CHARS)
    return {"type": "text", "text": text}


def encode_plaintext(plaintext: dict) -> bytes:
    """Compact UTF-8 JSON, the same bytes as ``JSON.stringify`` gives for plain objects."""
    if not isinstance(plaintext, dict):
        raise ProtocolError("bad_request", "plaintext must be a JSON object")
    return json.dumps(plaintext, ensure_ascii=False, separators=(",", ":")).encode()


def _envelope_fields(envelope: object) -> frozenset:
    """The field set an envelope of its ``v`` must have; ``bad_request`` for another v."""
    if not isinstance(envelope, dict):
        raise ProtocolError("bad_request", "envelope must be a JSON object")
    v = envelope.get("v")
    if type(v) is not int or v not in (1, 2):
        raise ProtocolError("bad_request", "envelope v must be 1 or 2")
    return ENVELOPE_FIELDS_V1 if v == 1 else ENVELOPE_FIELDS


def validate_envelope(envelope: object, *, shape_checked: bool = False) -> None:
    """Check the shape of §2 and §6 for the envelope's ``v`` (2, or 1 as stored before
    the upgrade): exactly its fields, canonical base64, sizes, ``n`` and ``head``.

    Raises ``ProtocolError('bad_request')``; keys and signature are not checked here.

    ``shape_checked=True`` is for a caller whose schema has already checked each field's
    type, the kids, ``n``, ``head`` and that every value is canonical base64 (the
    server's ``messaging.schemas.Envelope``): only the cheap rest is checked then, with
    the same errors: exactly the fields of its ``v``, ``ct`` at least a GCM tag long,
    ``sig`` not empty, ``keys`` a non-empty object without an empty value.
    """
    fields = _envelope_fields(envelope)
    if set(envelope) != fields:
        raise ProtocolError("bad_request", f"envelope must have exactly {sorted(fields)}")
    if shape_checked:
        _check_rest(envelope)
        return
    if fields is ENVELOPE_FIELDS:
        if not is_counter(envelope["n"]):
            raise ProtocolError("bad_request", "n must be an integer from 1 to 2^53-1")
        if not is_head(envelope["head"]):
            raise ProtocolError("bad_request", "head must be empty or a record hash")
    b64decode(envelope["iv"], IV_BYTES)
    b64decode(envelope["kc"], 32)
    if len(b64decode(envelope["ct"])) < TAG_BYTES:
        raise ProtocolError("bad_request", "ct is shorter than the GCM tag")
    if not b64decode(envelope["sig"]):
        raise ProtocolError("bad_request", "sig is empty")
    if not is_kid(envelope["sig_kid"]):
        raise ProtocolError("bad_request", "sig_kid must be a kid")
    keys = envelope["keys"]
    if not isinstance(keys, dict) or not keys:
        raise ProtocolError("bad_request", "keys must be a non-empty object")
    for kid, wrapped in keys.items():
        if not is_kid(kid) or not b64decode(wrapped):
            raise ProtocolError("bad_request", "keys must map kids to base64 wrapped keys")


def _seal(
    plaintext: dict,
    aad: str,
    sender_keys: DeviceKeys,
    recipient_keys: dict[str, RsaKey],
    content_key: bytes | None,
    iv: bytes | None,
) -> dict:
    """The parts every envelope shares: iv, ct, kc, keys, sig_kid, sig (over S of ``aad``)."""
    content_key = get_random_bytes(CONTENT_KEY_BYTES) if content_key is None else content_key
    iv = get_random_bytes(IV_BYTES) if iv is None else iv
    if len(content_key) != CONTENT_KEY_BYTES or len(iv) != IV_BYTES:
        raise ValueError("content_key must be 32 bytes and iv 12 bytes")
    if not recipient_keys:
        raise ProtocolError("bad_request", "no recipients")
    cipher = AES.new(content_key, AES.MODE_GCM, nonce=iv, mac_len=TAG_BYTES)
    cipher.update(aad.encode())
    body, tag = cipher.encrypt_and_digest(encode_plaintext(plaintext))
    wrapped = {}
    for kid, public_key in recipient_keys.items():
        if kid_of(public_key) != kid:
            raise ProtocolError("invalid_key", f"recipient key does not match kid {kid}")
        wrapped[kid] = b64encode(_oaep(public_key).encrypt(content_key))
    iv_b64, ct_b64 = b64encode(iv), b64encode(body + tag)
    kc_b64 = b64encode(key_commitment(content_key))
    signature = pss_sign(sender_keys.sig_private, signed_string(aad, iv_b64, ct_b64, kc_b64))
    return {
        "iv": iv_b64,
        "ct": ct_b64,
        "kc": kc_b64,
        "keys": wrapped,
        "sig_kid": sender_keys.sig_kid,
        "sig": b64encode(signature),
    }


def seal_envelope(
    plaintext: dict,
    *,
    conversation_id: int,
    sender_id: int,
    client_msg_id: str,
    n: int,
    head: str,
    sender_keys: DeviceKeys,
    recipient_keys: dict[str, RsaKey],
    content_key: bytes | None = None,
    iv: bytes | None = None,
) -> dict:
    """Encrypt ``plaintext`` (a JSON object) into a v2 envelope of §2.

    ``n`` is the sending device's counter in this conversation and ``head`` the roster
    head hash its member list comes from (``""`` in a direct conversation).
    ``recipient_keys`` maps each recipient device's enc kid to its public key (the
    sender's own devices included); a kid that is not its key's is ``invalid_key``.
    ``content_key`` and ``iv`` are fresh random unless given (for known-answer tests).
    """
    aad = message_aad(conversation_id, sender_id, client_msg_id, sender_keys.sig_kid, n, head)
    parts = _seal(plaintext, aad, sender_keys, recipient_keys, content_key, iv)
    return {"v": 2, "n": n, "head": head, **parts}


def seal_envelope_v1(
    plaintext: dict,
    *,
    conversation_id: int,
    sender_id: int,
    client_msg_id: str,
    sender_keys: DeviceKeys,
    recipient_keys: dict[str, RsaKey],
    content_key: bytes | None = None,
    iv: bytes | None = None,
) -> dict:
    """A v1 envelope, as clients made before v2: for tests and known-answer vectors only
    (the server refuses new ones)."""
    aad = message_aad_v1(conversation_id, sender_id, client_msg_id)
    return {"v": 1, **_seal(plaintext, aad, sender_keys, recipient_keys, content_key, iv)}


def _b64_length(text: str) -> int:
    """Decoded length of canonical padded base64."""
    return len(text) // 4 * 3 - len(text) + len(text.rstrip("="))


def _check_rest(envelope: dict) -> None:
    """``validate_envelope(shape_checked=True)`` past the field set: what a schema that
    checked each value as canonical base64 leaves (decoded lengths from the text alone)."""
    if _b64_length(envelope["ct"]) < TAG_BYTES:
        raise ProtocolError("bad_request", "ct is shorter than the GCM tag")
    if not envelope["sig"]:
        raise ProtocolError("bad_request", "sig is empty")
    keys = envelope["keys"]
    if not isinstance(keys, dict) or not keys or not all(keys.values()):
        raise ProtocolError("bad_request", "keys must map kids to base64 wrapped keys")


def verify_envelope_signature(
    envelope: dict,
    *,
    conversation_id: int,
    sender_id: int,
    client_msg_id: str,
    sig_public: RsaKey,
    sig_spki: bytes | None = None,
    shape_checked: bool = False,
) -> bool:
    """What the server checks: the shape, then ``sig`` over S by ``sig_public`` (v2, or
    v1 by v1's rules).

    A malformed envelope or id raises ``ProtocolError('bad_request')``; a signature
    that does not verify, or a ``sig_kid`` that is not ``sig_public``'s, returns False.

    For the server's hot path: ``sig_spki``, the SPKI DER that ``sig_public`` was
    imported from, gives the kid without re-exporting the key; ``shape_checked=True``
    checks only what ``validate_envelope(shape_checked=True)`` checks, when the caller's
    schema has already checked the rest (the ``sig`` is still decoded as canonical base64
    here).
    """
    validate_envelope(envelope, shape_checked=shape_checked)
    aad = envelope_aad(envelope, conversation_id, sender_id, client_msg_id)
    kid = compute_kid(sig_spki) if sig_spki is not None else kid_of(sig_public)
    if envelope["sig_kid"] != kid:
        return False
    message = signed_string(aad, envelope["iv"], envelope["ct"], envelope["kc"])
    return pss_verify(sig_public, message, b64decode(envelope["sig"]))


def _decode_plaintext(data: bytes) -> dict:
    def reject_constant(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(data.decode("utf-8"), parse_constant=reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise OpenError("plaintext is not UTF-8 JSON") from exc
    if not isinstance(value, dict):
        raise OpenError("plaintext is not a JSON object")
    return value


def _content_key(envelope: dict, device_keys: DeviceKeys) -> bytes:
    """K unwrapped from this device's entry and checked against ``kc``; else OpenError."""
    wrapped = envelope["keys"].get(device_keys.enc_kid)
    if wrapped is None:
        raise OpenError("no wrapped key for this device")
    try:
        content_key = _oaep(device_keys.enc_private).decrypt(b64decode(wrapped))
    except (ValueError, ProtocolError) as exc:
        raise OpenError("content key does not unwrap") from exc
    if len(content_key) != CONTENT_KEY_BYTES:
        raise OpenError("content key is not 32 bytes")
    if not hmac.compare_digest(key_commitment(content_key), b64decode(envelope["kc"])):
        raise OpenError("key commitment does not match")
    return content_key


def open_envelope(
    envelope: dict,
    *,
    conversation_id: int,
    sender_id: int,
    client_msg_id: str,
    device_keys: DeviceKeys,
    sig_public: RsaKey,
) -> dict:
    """Unwrap, check the commitment (constant time) and signature, decrypt; return the JSON.

    Opens v2 envelopes and v1 ones by v1's rules (the caller tells them apart by ``v``).
    ``sig_public`` is the sender device's signing key, which the caller has checked
    belongs to ``sender_id``. Every failure raises ``OpenError``; no partial plaintext.
    """
    try:
        validate_envelope(envelope)
        aad = envelope_aad(envelope, conversation_id, sender_id, client_msg_id)
    except ProtocolError as exc:
        raise OpenError(exc.detail) from exc
    content_key = _content_key(envelope, device_keys)
    if not verify_envelope_signature(
        envelope,
        conversation_id=conversation_id,
        sender_id=sender_id,
        client_msg_id=client_msg_id,
        sig_public=sig_public,
    ):
        raise OpenError("signature does not verify")
    sealed = b64decode(envelope["ct"])
    cipher = AES.new(content_key, AES.MODE_GCM, nonce=b64decode(envelope["iv"]), mac_len=TAG_BYTES)
    cipher.update(aad.encode())
    try:
        data = cipher.decrypt_and_verify(sealed[:-TAG_BYTES], sealed[-TAG_BYTES:])
    except ValueError as exc:
        raise OpenError("ciphertext does not decrypt") from exc
    return _decode_plaintext(data)


def rewrap_content_key(envelope: dict, device_keys: DeviceKeys, recipient_public: RsaKey) -> str:
    """A history key (§7.3): K of ``envelope`` unwrapped with this device's entry, checked
    against ``kc``, and wrapped (base64 RSA-OAEP) for ``recipient_public``. OpenError if
    this device cannot unwrap it."""
    try:
        validate_envelope(envelope)
    except ProtocolError as exc:
        raise OpenError(exc.detail) from exc
    return b64encode(_oaep(recipient_public).encrypt(_content_key(envelope, device_keys)))


# --- identity keys and device certificates (§1, §7) --------------------------------------


def _kids_message(label: str, user_id: int, *kids: str) -> bytes:
    _require_id(user_id, "user_id")
    if not all(is_kid(kid) for kid in kids):
        raise ProtocolError("bad_request", "kids must be 64 lowercase hex digits")
    return "|".join([f"e2ee-chat/v2/{label}", str(user_id), *kids]).encode()


def identity_proof_message(user_id: int, id_kid: str) -> bytes:
    """``e2ee-chat/v2/identity|<user_id>|<id_kid>`` as UTF-8."""
    return _kids_message("identity", user_id, id_kid)


def sign_identity_proof(id_private: RsaKey, user_id: int) -> str:
    """The base64 proof that ``user_id``'s identity key is held (§7.1)."""
    message = identity_proof_message(user_id, kid_of(id_private))
    return b64encode(pss_sign(id_private, message))


def verify_identity_proof(id_public: RsaKey, user_id: int, proof: str) -> bool:
    """Whether ``proof`` is ``id_public``'s signature of the identity message.

    Malformed input raises ``ProtocolError('bad_request')``; a wrong signature is False.
    """
    signature = b64decode(proof)
    message = identity_proof_message(user_id, kid_of(id_public))
    return pss_verify(id_public, message, signature)


def device_cert_message(user_id: int, enc_kid: str, sig_kid: str, id_kid: str) -> bytes:
    """``e2ee-chat/v2/device-cert|<user_id>|<enc_kid>|<sig_kid>|<id_kid>`` as UTF-8."""
    return _kids_message("device-cert", user_id, enc_kid, sig_kid, id_kid)


def sign_device_cert(id_private: RsaKey, user_id: int, enc_kid: str, sig_kid: str) -> str:
    """The base64 certificate by the identity key for a device's two kids (§1)."""
    id_kid = kid_of(id_private)
    return b64encode(pss_sign(id_private, device_cert_message(user_id, enc_kid, sig_kid, id_kid)))


def verify_device_cert(
    id_public: RsaKey, user_id: int, enc_kid: str, sig_kid: str, cert: str
) -> bool:
    """Whether ``cert`` certifies the device's kids under ``id_public``.

    Malformed input raises ``ProtocolError('bad_request')``; a wrong signature is False.
    """
    signature = b64decode(cert)
    id_kid = kid_of(id_public)
    return pss_verify(id_public, device_cert_message(user_id, enc_kid, sig_kid, id_kid), signature)


def identity_upgrade_message(user_id: int, id_kid: str) -> bytes:
    """``e2ee-chat/v2/identity-upgrade|<user_id>|<id_kid>`` as UTF-8 (§7.5)."""
    return _kids_message("identity-upgrade", user_id, id_kid)


def sign_identity_upgrade(device_keys: DeviceKeys, user_id: int, id_kid: str) -> dict:
    """``{"sig_kid", "sig"}``: a v1 device's signature that the new identity is its user's."""
    signature = pss_sign(device_keys.sig_private, identity_upgrade_message(user_id, id_kid))
    return {"sig_kid": device_keys.sig_kid, "sig": b64encode(signature)}


def verify_identity_upgrade(sig_public: RsaKey, user_id: int, id_kid: str, upgrade: dict) -> bool:
    """Whether ``upgrade`` (``{"sig_kid","sig"}``, exactly) is ``sig_public``'s signature
    of the upgrade message; False for another key. Malformed input raises
    ``ProtocolError('bad_request')``."""
    if not isinstance(upgrade, dict) or set(upgrade) != {"sig_kid", "sig"}:
        raise ProtocolError("bad_request", 'upgrade must be exactly {"sig_kid", "sig"}')
    if not is_kid(upgrade["sig_kid"]):
        raise ProtocolError("bad_request", "upgrade sig_kid must be a kid")
    signature = b64decode(upgrade["sig"])
    if upgrade["sig_kid"] != kid_of(sig_public):
        return False
    return pss_verify(sig_public, identity_upgrade_message(user_id, id_kid), signature)


# --- linking a device (§7.2) --------------------------------------------------------------


def link_code(user_id: int, id_kid: str, enc_kid: str, sig_kid: str) -> str:
    """The first 20 hex digits of SHA-256 of
    ``e2ee-chat/v2/link-code|<user_id>|<id_kid>|<enc_kid>|<sig_kid>``."""
    message = _kids_message("link-code", user_id, id_kid, enc_kid, sig_kid)
    return hashlib.sha256(message).hexdigest()[:LINK_CODE_CHARS]


def format_link_code(code: str) -> str:
    """A link code in five groups of four, for showing."""
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))


def same_link_code(typed: str, code: str) -> bool:
    """Whether ``typed`` is ``code``, ignoring spaces and letter case."""
    if not isinstance(typed, str):
        return False
    return "".join(typed.split()).lower() == "".join(code.split()).lower()


def id_wrap_aad(user_id: int, enc_kid: str, sig_kid: str) -> bytes:
    """``e2ee-chat/v2/id-wrap|<user_id>|<enc_kid>|<sig_kid>`` as UTF-8."""
    return _kids_message("id-wrap", user_id, enc_kid, sig_kid)


def make_id_wrap(
    id_private: RsaKey,
    trust: dict,
    *,
    user_id: int,
    enc_public: RsaKey,
    sig_kid: str,
    wrap_key: bytes | None = None,
    iv: bytes | None = None,
) -> dict:
    """``{"ek","iv","ct"}``: the identity private key and the approver's trust state
    (``{"identities": {"<user_id>": {"id_kid", "verified"}}}``) for the new device whose
    encryption key is ``enc_public`` and signing kid ``sig_kid`` (§7.2 step 3)."""
    wrap_key = get_random_bytes(CONTENT_KEY_BYTES) if wrap_key is None else wrap_key
    iv = get_random_bytes(IV_BYTES) if iv is None else iv
    if len(wrap_key) != CONTENT_KEY_BYTES or len(iv) != IV_BYTES:
        raise ValueError("wrap_key must be 32 bytes and iv 12 bytes")
    check_trust_state(trust)
    enc_kid = kid_of(enc_public)
    payload = {"id_pkcs8": b64encode(id_private.export_key("DER", pkcs=8)), "trust": trust}
    cipher = AES.new(wrap_key, AES.MODE_GCM, nonce=iv, mac_len=TAG_BYTES)
    cipher.update(id_wrap_aad(user_id, enc_kid, sig_kid))
    body, tag = cipher.encrypt_and_digest(encode_plaintext(payload))
    return {
        "ek": b64encode(_oaep(enc_public).encrypt(wrap_key)),
        "iv": b64encode(iv),
        "ct": b64encode(body + tag),
    }


def check_trust_state(trust: object) -> dict:
    """A §7.2 trust state: ``{"identities": {"<user_id>": {"id_kid", "verified": bool}}}``
    (unknown fields inside ``trust`` allowed); else ``ProtocolError('bad_request')``."""
    identities = trust.get("identities") if isinstance(trust, dict) else None
    if not isinstance(identities, dict):
        raise ProtocolError("bad_request", "trust must hold an identities object")
    for user_id, entry in identities.items():
        if not (isinstance(user_id, str) and _USER_KEY_RE.fullmatch(user_id)):
            raise ProtocolError("bad_request", "trust identities are keyed by user id")
        if (
            not isinstance(entry, dict)
            or not is_kid(entry.get("id_kid"))
            or type(entry.get("verified")) is not bool
        ):
            raise ProtocolError("bad_request", 'a trusted identity is {"id_kid", "verified"}')
    return trust


def open_id_wrap(id_wrap: dict, *, user_id: int, device_keys: DeviceKeys) -> tuple[RsaKey, dict]:
    """(identity private key, trust state) from an ``id_wrap`` made for ``device_keys``.

    The caller checks that the key's kid is the ``id_kid`` of its link code. Any failure
    (shape, unwrap, tag, payload) raises ``OpenError``.
    """
    if not isinstance(id_wrap, dict) or set(id_wrap) != ID_WRAP_FIELDS:
        raise OpenError('id_wrap must be exactly {"ek", "iv", "ct"}')
    try:
        ek, iv, sealed = (
            b64decode(id_wrap["ek"]),
            b64decode(id_wrap["iv"], IV_BYTES),
            b64decode(id_wrap["ct"]),
        )
        aad = id_wrap_aad(user_id, device_keys.enc_kid, device_keys.sig_kid)
    except ProtocolError as exc:
        raise OpenError(exc.detail) from exc
    try:
        wrap_key = _oaep(device_keys.enc_private).decrypt(ek)
    except ValueError as exc:
        raise OpenError("wrap key does not unwrap") from exc
    if len(wrap_key) != CONTENT_KEY_BYTES or len(sealed) < TAG_BYTES:
        raise OpenError("wrap key or ciphertext has the wrong size")
    cipher = AES.new(wrap_key, AES.MODE_GCM, nonce=iv, mac_len=TAG_BYTES)
    cipher.update(aad)
    try:
        data = cipher.decrypt_and_verify(sealed[:-TAG_BYTES], sealed[-TAG_BYTES:])
    except ValueError as exc:
        raise OpenError("id_wrap does not decrypt") from exc
    payload = _decode_plaintext(data)
    if set(payload) != {"id_pkcs8", "trust"}:
        raise OpenError('id_wrap payload must be exactly {"id_pkcs8", "trust"}')
    try:
        id_private = identity_key_from_pkcs8(b64decode(payload["id_pkcs8"]))
        trust = check_trust_state(payload["trust"])
    except ProtocolError as exc:
        raise OpenError(exc.detail) from exc
    return id_private, trust


# --- safety numbers (§7.4) ----------------------------------------------------------------


def safety_digits(user_id: int, id_kid: str) -> str:
    """One user's 30 digits: six 5-digit groups from SHA-256 of
    ``e2ee-chat/v2/safety|<user_id>|<id_kid>``."""
    digest = hashlib.sha256(_kids_message("safety", user_id, id_kid)).digest()
    return "".join(
        f"{int.from_bytes(digest[5 * i : 5 * i + 5], 'big') % 100000:05d}" for i in range(6)
    )


def safety_number(user_a: int, id_kid_a: str, user_b: int, id_kid_b: str) -> str:
    """The 60 digits of two users' safety number: the smaller user id's 30 first."""
    (low, low_kid), (high, high_kid) = sorted([(user_a, id_kid_a), (user_b, id_kid_b)])
    return safety_digits(low, low_kid) + safety_digits(high, high_kid)


def format_safety_number(number: str) -> str:
    """60 digits in 12 groups of 5."""
    return " ".join(number[i : i + 5] for i in range(0, len(number), 5))
