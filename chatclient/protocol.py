"""The wire protocol of PROTOCOL.md §1, §2 and §6: keys, kids, proofs and message envelopes.

Pure functions over bytes, strings and pycryptodome keys; no I/O. The browser twin is
``static/chat/protocol.js`` and keeps the same names in camelCase.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from Crypto.Cipher import AES, PKCS1_OAEP
from Crypto.Hash import SHA256
from Crypto.PublicKey import RSA
from Crypto.PublicKey.RSA import RsaKey
from Crypto.Random import get_random_bytes
from Crypto.Signature import pss

ALLOWED_KEY_BITS = (2048, 3072, 4096)
DEFAULT_KEY_BITS = 3072
PUBLIC_EXPONENT = 65537
MAX_SPKI_BYTES = 1024
CONTENT_KEY_BYTES = 32
IV_BYTES = 12
TAG_BYTES = 16
MAX_TEXT_CHARS = 16000
ENVELOPE_FIELDS = frozenset({"v", "iv", "ct", "kc", "keys", "sig_kid", "sig"})

KEY_COMMITMENT_LABEL = b"e2ee-chat/v1/key-commitment"
_B64_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_KID_RE = re.compile(r"[0-9a-f]{64}")
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class ProtocolError(Exception):
    """A protocol violation; ``code`` is an error code of PROTOCOL.md §6."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


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
    """A device's two private keys: RSA-OAEP for encryption, RSA-PSS for signing."""

    enc_private: RsaKey
    sig_private: RsaKey

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


def device_keys_from_pkcs8(enc_pkcs8: bytes, sig_pkcs8: bytes) -> DeviceKeys:
    """Import a device's two PKCS#8 DER private keys; unusable keys are ``invalid_key``."""
    try:
        keys = DeviceKeys(
            enc_private=RSA.import_key(enc_pkcs8), sig_private=RSA.import_key(sig_pkcs8)
        )
    except (ValueError, IndexError, TypeError) as exc:
        raise ProtocolError("invalid_key", "not an RSA private key") from exc
    if not (keys.enc_private.has_private() and keys.sig_private.has_private()):
        raise ProtocolError("invalid_key", "not an RSA private key")
    import_public_key(keys.enc_spki)
    import_public_key(keys.sig_spki)
    if keys.enc_kid == keys.sig_kid:
        raise ProtocolError("invalid_key", "encryption and signing keys must differ")
    return keys


def generate_device_keys(bits: int = DEFAULT_KEY_BITS) -> DeviceKeys:
    """Two fresh RSA key pairs of ``bits`` bits with e = 65537."""
    if bits not in ALLOWED_KEY_BITS:
        raise ValueError(f"bits must be one of {ALLOWED_KEY_BITS}")
    return DeviceKeys(
        enc_private=RSA.generate(bits, e=PUBLIC_EXPONENT),
        sig_private=RSA.generate(bits, e=PUBLIC_EXPONENT),
    )


def _pss_sign(key: RsaKey, message: bytes) -> bytes:
    return pss.new(key).sign(SHA256.new(message))


def _pss_verify(key: RsaKey, message: bytes, signature: bytes) -> bool:
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
    return b64encode(_pss_sign(keys.sig_private, message))


def verify_device_proof(
    sig_public: RsaKey, user_id: int, enc_kid: str, sig_kid: str, proof: str
) -> bool:
    """Whether ``proof`` (base64) is ``sig_public``'s signature of the device message.

    Malformed input (non-canonical base64, bad kids, non-integer id) raises
    ``ProtocolError('bad_request')``; a signature that does not verify returns False.
    """
    signature = b64decode(proof)
    return _pss_verify(sig_public, device_proof_message(user_id, enc_kid, sig_kid), signature)


# --- message envelope (§2) ---------------------------------------------------------------


def message_aad(conversation_id: int, sender_id: int, client_msg_id: str) -> str:
    """A of §2: ``e2ee-chat/v1/msg|<conversation_id>|<sender_id>|<client_msg_id>``."""
    _require_id(conversation_id, "conversation_id")
    _require_id(sender_id, "sender_id")
    if not is_client_msg_id(client_msg_id):
        raise ProtocolError("bad_request", "client_msg_id must be a lowercase UUID")
    return f"e2ee-chat/v1/msg|{conversation_id}|{sender_id}|{client_msg_id}"


def signed_string(aad: str, iv: str, ct: str, kc: str) -> bytes:
    """S of §2 as UTF-8, built from the envelope's own base64 strings."""
    return f"{aad}|{iv}|{ct}|{kc}".encode()


def key_commitment(content_key: bytes) -> bytes:
    """HMAC-SHA256(K, "e2ee-chat/v1/key-commitment")."""
    return hmac.new(content_key, KEY_COMMITMENT_LABEL, hashlib.sha256).digest()


def text_message(text: str) -> dict:
    """The plaintext of a text message; longer than 16,000 characters is ``too_large``."""
    if not isinstance(text, str):
        raise ProtocolError("bad_request", "text must be a string")
    if len(text) > MAX_TEXT_CHARS:
        raise ProtocolError("too_large", f"text is longer than {MAX_TEXT_CHARS} characters")
    return {"type": "text", "text": text}


def encode_plaintext(plaintext: dict) -> bytes:
    """Compact UTF-8 JSON, the same bytes as ``JSON.stringify`` gives for plain objects."""
    if not isinstance(plaintext, dict):
        raise ProtocolError("bad_request", "plaintext must be a JSON object")
    return json.dumps(plaintext, ensure_ascii=False, separators=(",", ":")).encode()


def validate_envelope(envelope: object) -> None:
    """Check the shape of §2 and §6: exactly its fields, canonical base64, sizes.

    Raises ``ProtocolError('bad_request')``; keys and signature are not checked here.
    """
    if not isinstance(envelope, dict) or set(envelope) != ENVELOPE_FIELDS:
        raise ProtocolError("bad_request", f"envelope must have exactly {sorted(ENVELOPE_FIELDS)}")
    if type(envelope["v"]) is not int or envelope["v"] != 1:
        raise ProtocolError("bad_request", "envelope v must be 1")
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


def seal_envelope(
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
    """Encrypt ``plaintext`` (a JSON object) into a §2 envelope.

    ``recipient_keys`` maps each recipient device's enc kid to its public key (the
    sender's own devices included); a kid that is not its key's is ``invalid_key``.
    ``content_key`` and ``iv`` are fresh random unless given (for known-answer tests).
    """
    content_key = get_random_bytes(CONTENT_KEY_BYTES) if content_key is None else content_key
    iv = get_random_bytes(IV_BYTES) if iv is None else iv
    if len(content_key) != CONTENT_KEY_BYTES or len(iv) != IV_BYTES:
        raise ValueError("content_key must be 32 bytes and iv 12 bytes")
    if not recipient_keys:
        raise ProtocolError("bad_request", "no recipients")
    aad = message_aad(conversation_id, sender_id, client_msg_id)
    cipher = AES.new(content_key, AES.MODE_GCM, nonce=iv, mac_len=TAG_BYTES)
    cipher.update(aad.encode())
    body, tag = cipher.encrypt_and_digest(encode_plaintext(plaintext))
    wrapped = {}
    for kid, public_key in recipient_keys.items():
        if compute_kid(spki_of(public_key)) != kid:
            raise ProtocolError("invalid_key", f"recipient key does not match kid {kid}")
        wrapped[kid] = b64encode(_oaep(public_key).encrypt(content_key))
    iv_b64, ct_b64 = b64encode(iv), b64encode(body + tag)
    kc_b64 = b64encode(key_commitment(content_key))
    signature = _pss_sign(sender_keys.sig_private, signed_string(aad, iv_b64, ct_b64, kc_b64))
    return {
        "v": 1,
        "iv": iv_b64,
        "ct": ct_b64,
        "kc": kc_b64,
        "keys": wrapped,
        "sig_kid": sender_keys.sig_kid,
        "sig": b64encode(signature),
    }


def _b64_length(text: str) -> int:
    """Decoded length of canonical padded base64."""
    return len(text) // 4 * 3 - len(text) + len(text.rstrip("="))


def _check_checked_shape(envelope: dict) -> None:
    """What `validate_envelope` checks beyond a schema that already verified the fields,
    kids and canonical base64 of every value: the cheap rest (same errors)."""
    if not isinstance(envelope, dict) or set(envelope) != ENVELOPE_FIELDS:
        raise ProtocolError("bad_request", f"envelope must have exactly {sorted(ENVELOPE_FIELDS)}")
    if type(envelope["v"]) is not int or envelope["v"] != 1:
        raise ProtocolError("bad_request", "envelope v must be 1")
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
    """What the server checks: the shape, then ``sig`` over S by ``sig_public``.

    A malformed envelope or id raises ``ProtocolError('bad_request')``; a signature
    that does not verify, or a ``sig_kid`` that is not ``sig_public``'s, returns False.

    For the server's hot path: ``sig_spki``, the SPKI DER that ``sig_public`` was
    imported from, gives the kid without re-exporting the key; ``shape_checked=True``
    skips ``validate_envelope`` when the caller's schema has already checked exactly
    that (the ``sig`` is still decoded as canonical base64 here).
    """
    if shape_checked:
        _check_checked_shape(envelope)
    else:
        validate_envelope(envelope)
    aad = message_aad(conversation_id, sender_id, client_msg_id)
    kid = compute_kid(sig_spki) if sig_spki is not None else compute_kid(spki_of(sig_public))
    if envelope["sig_kid"] != kid:
        return False
    message = signed_string(aad, envelope["iv"], envelope["ct"], envelope["kc"])
    return _pss_verify(sig_public, message, b64decode(envelope["sig"]))


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

    ``sig_public`` is the sender device's signing key, which the caller has checked
    belongs to ``sender_id``. Every failure raises ``OpenError``; no partial plaintext.
    """
    try:
        validate_envelope(envelope)
        aad = message_aad(conversation_id, sender_id, client_msg_id)
    except ProtocolError as exc:
        raise OpenError(exc.detail) from exc
    wrapped = envelope["keys"].get(device_keys.enc_kid)
    if wrapped is None:
        raise OpenError("no wrapped key for this device")
    try:
        content_key = _oaep(device_keys.enc_private).decrypt(b64decode(wrapped))
    except ValueError as exc:
        raise OpenError("content key does not unwrap") from exc
    if len(content_key) != CONTENT_KEY_BYTES:
        raise OpenError("content key is not 32 bytes")
    if not hmac.compare_digest(key_commitment(content_key), b64decode(envelope["kc"])):
        raise OpenError("key commitment does not match")
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
