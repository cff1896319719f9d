"""chatclient/attachments.py on the shared vectors (tests/vectors/attachments.json): Padmé,
blob sizes, aad and nonces, byte-for-byte blobs, every tampered blob refused with its code
(fed whole and in pieces), payload validation and name cleaning; and the streaming edges."""

from __future__ import annotations

import hashlib
import io

import pytest

from chatclient import attachments as A
from chatclient.protocol import ProtocolError, b64decode, b64encode
from tests.vectors.known import load

VECTOR = load("attachments.json")


def pattern(size: int) -> bytes:
    return bytes((i * 7 + 3) % 251 for i in range(size))


def assemble(blob: bytes, parts: list) -> bytes:
    return b"".join(
        b64decode(part["b64"]) if isinstance(part, dict) else blob[part[0] : part[1]]
        for part in parts
    )


def encrypt_in_pieces(data: bytes, piece: int, key: bytes, prefix: bytes) -> tuple[bytes, str]:
    encryptor = A.FileEncryptor(len(data), key, prefix)
    out = [encryptor.update(data[i : i + piece]) for i in range(0, len(data), piece)]
    out.append(encryptor.finish())
    return b"".join(out), encryptor.sha256


def decrypt_in_pieces(meta: dict, blob: bytes, piece: int) -> bytes:
    decryptor = A.FileDecryptor(meta)
    out = [decryptor.update(blob[i : i + piece]) for i in range(0, len(blob), piece)]
    decryptor.finish()
    return b"".join(out)


def honest_blob(name: str) -> bytes:
    key, prefix = b64decode(VECTOR["key"]), b64decode(VECTOR["prefix"])
    return A.encrypt_file(pattern(VECTOR["files"][name]["file"]["size"]), key, prefix)[0]


def test_padme_blob_size_aad_and_nonce_match_the_vectors():
    for length, padded in VECTOR["padme"]:
        assert A.padme(length) == padded, length
    for size, length in VECTOR["blob_size"]:
        assert A.blob_size(size) == length
    for length, valid in VECTOR["is_blob_size"]:
        assert A.is_blob_size(length) is valid, length
    for index, last, text in VECTOR["aad"]:
        assert A.file_chunk_aad(index, last) == text.encode()
    for prefix, index, nonce in VECTOR["nonce"]:
        assert A.file_chunk_nonce(b64decode(prefix), index) == b64decode(nonce)


def test_padme_is_at_most_twelve_percent_and_blob_sizes_are_recognised():
    for length in [*range(0, 5000, 7), *range(65000, 200000, 997), 100 * 2**20]:
        padded = A.padme(length)
        assert padded >= max(length, 256) and (length < 256 or padded <= length * 1.12)
        assert A.padme(padded) == padded
        assert A.is_blob_size(A.blob_size(length))
        assert not A.is_blob_size(A.blob_size(length) + 1)
    with pytest.raises(ValueError):
        A.padme(-1)


@pytest.mark.parametrize("name", ["empty", "one_chunk", "two_chunks", "three_chunks"])
def test_vector_files_are_reproduced_byte_for_byte_and_open(name):
    entry = VECTOR["files"][name]
    meta = entry["file"]
    key, prefix = b64decode(meta["key"]), b64decode(meta["prefix"])
    data = pattern(meta["size"])
    for piece in (65536, 10007, 1 << 30):
        blob, sha256 = encrypt_in_pieces(data, piece, key, prefix)
        assert len(blob) == entry["blob_size"] == A.blob_size(meta["size"])
        assert hashlib.sha256(blob).hexdigest() == entry["blob_sha256"]
        assert sha256 == meta["sha256"] == A.file_sha256(data)
        assert decrypt_in_pieces(meta, blob, piece) == data


@pytest.mark.parametrize("case", VECTOR["tampered"], ids=lambda case: case["name"])
def test_every_tampered_blob_is_refused_with_its_code(case):
    blob = assemble(honest_blob(case["base"]), case["parts"])
    for piece in (len(blob) + 1, 10007, 65552):
        with pytest.raises(A.FileRefused) as exc:
            decrypt_in_pieces(case["file"], blob, max(piece, 1))
        assert exc.value.code == case["error"], (case["name"], piece)


def test_tampering_cases_cover_the_issue():
    codes = {case["error"] for case in VECTOR["tampered"]}
    assert codes == set(A.FILE_REFUSED_CODES)
    names = " ".join(case["name"] for case in VECTOR["tampered"])
    for kind in ("swapped", "truncated", "last_flag_cleared", "last_flag_set", "padding"):
        assert kind in names
    for kind in ("wrong_sha256", "wrong_size", "wrong_length"):
        assert kind in names


def test_payload_validation_matches_the_vectors():
    for payload in VECTOR["payloads"]["valid"]:
        assert A.validate_file_payload(payload) is payload["file"]
    for name, payload in VECTOR["payloads"]["invalid"]:
        with pytest.raises(A.FileRefused) as exc:
            A.validate_file_payload(payload)
        assert exc.value.code == "bad_meta", name
    meta = VECTOR["payloads"]["valid"][0]["file"]
    assert A.file_payload(meta) == {"type": "file", "file": meta}
    assert A.file_payload(meta, "hi")["text"] == "hi"
    with pytest.raises(A.FileRefused):
        A.file_payload({**meta, "size": -1})


def test_clean_file_name_matches_the_vectors():
    for name, cleaned in VECTOR["clean_file_name"]:
        assert A.clean_file_name(name) == cleaned, name
        assert "/" not in cleaned and "\\" not in cleaned and 1 <= len(cleaned) <= 120


def test_encryptor_refuses_wrong_amounts_and_oversize_files():
    with pytest.raises(ProtocolError) as exc:
        A.FileEncryptor(A.MAX_FILE_BYTES + 1)
    assert exc.value.code == "too_large"
    encryptor = A.FileEncryptor(10)
    with pytest.raises(ValueError):
        encryptor.update(bytes(11))
    encryptor.update(bytes(9))
    with pytest.raises(ValueError):
        encryptor.finish()
    fresh = A.FileEncryptor(0)
    assert len(fresh.key) == 32 and len(fresh.prefix) == 8
    assert fresh.key != A.FileEncryptor(0).key


def test_random_sizes_round_trip_in_odd_pieces():
    for size in (1, 255, 256, 257, 65535, 65537, 131072, 131073, 300001):
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        blob, encryptor = A.encrypt_file(data)
        meta = {
            "key": b64encode(encryptor.key),
            "prefix": b64encode(encryptor.prefix),
            "size": size,
            "sha256": encryptor.sha256,
        }
        assert decrypt_in_pieces(meta, blob, 4099) == data


def test_file_sha256_of_path_and_file_object(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(pattern(70000))
    expected = hashlib.sha256(pattern(70000)).hexdigest()
    assert A.file_sha256(str(path)) == A.file_sha256(path) == expected
    assert A.file_sha256(io.BytesIO(pattern(70000))) == expected
