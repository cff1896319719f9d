"""The server's check of an envelope signature, with RSA-PSS verified by OpenSSL.

Same answer as `chatclient.protocol.verify_envelope_signature(..., sig_spki=,
shape_checked=True)`, which stays the protocol's definition (pycryptodome, mirrored by
the browser's module); only the last step, the RSA-PSS verify of S, runs through
`cryptography` here: ~50 µs instead of ~300 µs with pycryptodome's constant-time
integers, on every message the server stores. `tests/test_signatures.py` proves both
agree on the shared vectors, and that one flipped bit fails both.
"""

from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_der_public_key

from chatclient import protocol

#: PROTOCOL §1: RSA-PSS, SHA-256 for hash and MGF1, salt length 32 bytes.
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
_SHA256 = hashes.SHA256()


@lru_cache(maxsize=4096)
def _openssl_key(sig_spki: bytes):
    """The OpenSSL key of a device's signing SPKI (parsing is the costly part of a verify).

    The SPKI was checked canonical at registration (`protocol.import_public_key`)."""
    return load_der_public_key(sig_spki)


def pss_verify(sig_spki: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is the RSA-PSS signature of `message` by the key `sig_spki`."""
    try:
        _openssl_key(sig_spki).verify(signature, message, _PSS, _SHA256)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def verify_envelope(
    envelope: dict, *, conversation_id: int, sender_id: int, client_msg_id: str, sig_spki: bytes
) -> bool:
    """Whether `envelope` (already validated by `schemas.Envelope`) is signed by the device
    whose signing SPKI is `sig_spki`, for this conversation, sender and message id.

    Raises `protocol.ProtocolError('bad_request')` for a shape the schema lets through
    but the protocol refuses, exactly as the protocol module's own check does."""
    protocol.validate_envelope(envelope, shape_checked=True)  # the cheap rest
    aad = protocol.envelope_aad(envelope, conversation_id, sender_id, client_msg_id)
    if envelope["sig_kid"] != protocol.compute_kid(sig_spki):
        return False
    message = protocol.signed_string(aad, envelope["iv"], envelope["ct"], envelope["kc"])
    return pss_verify(sig_spki, message, protocol.b64decode(envelope["sig"]))
