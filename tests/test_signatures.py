"""The server's OpenSSL verifier (`messaging.signatures`) agrees with the protocol module's
pycryptodome one on the shared envelope vectors, and one flipped bit fails both."""

import base64

import pytest

from chatclient import protocol
from messaging import signatures
from tests.vectors.known import fixed_keys, load

FILES = ["envelope_v1.json", "envelope_v2.json"]


def both(envelope: dict, context: dict, sender: str) -> tuple:
    """(pycryptodome's answer, OpenSSL's answer): True, False or the ProtocolError code."""
    keys = fixed_keys()[sender]
    spki = protocol.spki_of(keys.sig_public)
    answers = []
    for verify in (
        lambda: protocol.verify_envelope_signature(
            envelope, **context, sig_public=keys.sig_public, sig_spki=spki, shape_checked=True
        ),
        lambda: signatures.verify_envelope(envelope, **context, sig_spki=spki),
    ):
        try:
            answers.append(verify())
        except protocol.ProtocolError as exc:
            answers.append(exc.code)
    return tuple(answers)


def flip_bit(b64: str, bit: int) -> str:
    data = bytearray(base64.b64decode(b64))
    data[bit // 8] ^= 1 << (bit % 8)
    return base64.b64encode(bytes(data)).decode()


@pytest.mark.parametrize("file", FILES)
def test_both_verifiers_agree_on_the_vectors(file):
    vector = load(file)
    cases = [(vector["envelope"], vector["context"])]
    if "direct" in vector:
        cases.append((vector["direct"]["envelope"], vector["direct"]["context"]))
    for envelope, context in cases:
        assert both(envelope, context, vector["sender"]) == (True, True)
    answers = {
        case["name"]: both(case["envelope"], case["context"], vector["sender"])
        for case in vector["tampered"]
    }
    assert all(a == b for a, b in answers.values()), answers
    assert answers["sig"] == (False, False)  # the signature itself, not only the shape


@pytest.mark.parametrize("field", ["sig", "ct", "iv", "kc"])
def test_one_flipped_bit_fails_both(field):
    vector = load("envelope_v2.json")
    envelope = vector["envelope"]
    for bit in (0, 8 * len(base64.b64decode(envelope[field])) - 1):
        tampered = {**envelope, field: flip_bit(envelope[field], bit)}
        assert both(tampered, vector["context"], vector["sender"]) == (False, False)


def test_pss_verify_of_the_signed_string_flips_with_one_bit():
    keys = fixed_keys()["alice"]
    spki = protocol.spki_of(keys.sig_public)
    message = b"e2ee-chat|S"
    signature = protocol.pss_sign(keys.sig_private, message)
    assert signatures.pss_verify(spki, message, signature)
    assert protocol.pss_verify(keys.sig_public, message, signature)
    flipped = bytes([message[0] ^ 1]) + message[1:]
    assert not signatures.pss_verify(spki, flipped, signature)
    assert not protocol.pss_verify(keys.sig_public, flipped, signature)
    assert not signatures.pss_verify(spki, message, signature[:-1])  # wrong length: False
