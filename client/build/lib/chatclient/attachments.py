"""Encrypted attachments of PROTOCOL.md §10.2: Padmé padding, chunked AES-256-GCM with
per-chunk nonces and aad, streaming encryption and decryption with every reader check,
the ``file`` payload and its validation, and file-name cleaning.

Pure functions and small stateful classes over bytes; no I/O except reading a file for
``file_sha256``. The browser twin is ``static/chat/attachments.js`` with the same names
in camelCase (its streaming methods are async). A reader refuses a file with
``FileRefused(code, detail)``, ``code`` one of ``FILE_REFUSED_CODES``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import BinaryIO

from Crypto.Cipher import AES
from Crypto.Random import get_random_bytes

from chatclient.errors import FileRefused  # noqa: F401  (re-exported: attachments.FileRefused)
from chatclient.protocol import (
    MAX_TEXT_CHARS,
    ProtocolError,
    b64decode,
    is_client_msg_id,
)

FILE_CHUNK = 65536
FILE_TAG = 16
FILE_KEY_BYTES = 32
FILE_PREFIX_BYTES = 8
MIN_PADDED = 256
MAX_FILE_BYTES = 100 * 2**20
THUMB_MAX_BYTES = 16384
MAX_NAME_CHARS = 255
MAX_MIME_CHARS = 255
MAX_CLEAN_NAME_CHARS = 120
MAX_DIMENSION = 65535
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
FILE_REFUSED_CODES = ("bad_length", "bad_chunk", "bad_last", "bad_padding", "bad_hash", "bad_meta")
FILE_AAD_LABEL = "e2ee-chat/v2/file"

_BLOB_ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_MIME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
_MAX_EXTENSION_CHARS = 16


# --- sizes --------------------------------------------------------------------------------


def padme(length: int) -> int:
    """P = max(256, Padmé(length)) of §10.2, in exact integer arithmetic."""
    if type(length) is not int or length < 0:
        raise ValueError("length must be a non-negative integer")
    if length < MIN_PADDED:
        return MIN_PADDED
    e = length.bit_length() - 1  # floor(log2 L)
    s = e.bit_length()  # floor(log2 E) + 1
    mask = (1 << (e - s)) - 1
    return (length + mask) & ~mask


def chunk_count(padded: int) -> int:
    """The number of 64 KiB chunks of a padded file of ``padded`` (≥ 1) bytes."""
    if type(padded) is not int or padded < 1:
        raise ValueError("padded must be a positive integer")
    return -(-padded // FILE_CHUNK)


def blob_size(size: int) -> int:
    """The blob length of a ``size``-byte file: P + 16 × ⌈P / 65536⌉."""
    padded = padme(size)
    return padded + FILE_TAG * chunk_count(padded)


def is_blob_size(length: int) -> bool:
    """Whether ``length`` is ``blob_size(L)`` for some file size L ≤ MAX_FILE_BYTES."""
    if type(length) is not int or length < blob_size(0) or length > blob_size(MAX_FILE_BYTES):
        return False
    count = -(-length // (FILE_CHUNK + FILE_TAG))
    padded = length - FILE_TAG * count
    return padded >= MIN_PADDED and padme(padded) == padded and chunk_count(padded) == count


def file_chunk_aad(index: int, last: bool) -> bytes:
    """``e2ee-chat/v2/file|<i>|<1 if last else 0>`` as UTF-8."""
    return f"{FILE_AAD_LABEL}|{index}|{1 if last else 0}".encode()


def file_chunk_nonce(prefix: bytes, index: int) -> bytes:
    """The 12-byte nonce of chunk ``index``: ``prefix || uint32_be(index)``."""
    if len(prefix) != FILE_PREFIX_BYTES or not 0 <= index < 2**32:
        raise ValueError("prefix must be 8 bytes and index 0..2^32-1")
    return prefix + index.to_bytes(4, "big")


def _cipher(key: bytes, prefix: bytes, index: int, last: bool):
    cipher = AES.new(key, AES.MODE_GCM, nonce=file_chunk_nonce(prefix, index), mac_len=FILE_TAG)
    cipher.update(file_chunk_aad(index, last))
    return cipher


def file_sha256(source: bytes | bytearray | memoryview | str | BinaryIO) -> str:
    """Lowercase hex SHA-256 of bytes, of the file at a path, or of a binary file object
    read to its end."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return hashlib.sha256(source).hexdigest()
    if isinstance(source, str) or hasattr(source, "__fspath__"):
        with open(source, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    return hashlib.file_digest(source, "sha256").hexdigest()


# --- streaming encryption -----------------------------------------------------------------


class FileEncryptor:
    """Encrypts a file of ``size`` bytes into its §10.2 blob, chunk by chunk.

    ``key`` (32 bytes) and ``prefix`` (8 bytes) are fresh random unless given (for
    known-answer tests). ``update(data)`` returns the ciphertext of every chunk completed
    so far (a bytearray, possibly empty); ``finish()`` pads with zeros to P and returns the rest,
    the final chunk marked last. Feeding more or fewer than ``size`` bytes raises
    ValueError; a size over MAX_FILE_BYTES is ``ProtocolError('too_large')``. The
    plaintext's hex SHA-256 is ``sha256`` once finished.
    """

    def __init__(self, size: int, key: bytes | None = None, prefix: bytes | None = None) -> None:
        if type(size) is not int or size < 0:
            raise ValueError("size must be a non-negative integer")
        if size > MAX_FILE_BYTES:
            raise ProtocolError("too_large", f"files are at most {MAX_FILE_BYTES} bytes")
        self.key = get_random_bytes(FILE_KEY_BYTES) if key is None else bytes(key)
        self.prefix = get_random_bytes(FILE_PREFIX_BYTES) if prefix is None else bytes(prefix)
        if len(self.key) != FILE_KEY_BYTES or len(self.prefix) != FILE_PREFIX_BYTES:
            raise ValueError("key must be 32 bytes and prefix 8 bytes")
        self.size = size
        self.padded = padme(size)
        self.blob_size = blob_size(size)
        self.sha256: str | None = None
        self._count = chunk_count(self.padded)
        self._index = 0
        self._fed = 0
        self._pending = bytearray()
        self._hash = hashlib.sha256()
        self._finished = False

    def _seal(self, chunks: list) -> bytearray:
        """The ciphertexts of the next ``chunks``, written into one buffer (no joins)."""
        out = bytearray(sum(len(chunk) for chunk in chunks) + FILE_TAG * len(chunks))
        view, offset = memoryview(out), 0
        for chunk in chunks:
            last = self._index == self._count - 1
            cipher = _cipher(self.key, self.prefix, self._index, last)
            cipher.encrypt(chunk, output=view[offset : offset + len(chunk)])
            offset += len(chunk)
            view[offset : offset + FILE_TAG] = cipher.digest()
            offset += FILE_TAG
            self._index += 1
        return out

    def update(self, data: bytes | bytearray | memoryview) -> bytearray:
        """The ciphertext of the chunks that ``data`` completes (maybe empty)."""
        if self._finished:
            raise ValueError("the encryptor is finished")
        if self._fed + len(data) > self.size:
            raise ValueError(f"more than the announced {self.size} bytes")
        self._fed += len(data)
        self._hash.update(data)
        view = memoryview(data)
        out = []
        if self._pending:
            take = min(FILE_CHUNK - len(self._pending), len(view))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < FILE_CHUNK or self._index == self._count - 1:
                return bytearray()  # the final chunk always waits for finish(), which marks it last
            out.append(bytes(self._pending))
            self._pending = bytearray()
        while len(view) >= FILE_CHUNK and self._index + len(out) < self._count - 1:
            out.append(view[:FILE_CHUNK])
            view = view[FILE_CHUNK:]
        self._pending += view
        return self._seal(out)

    def finish(self) -> bytearray:
        """Pad with zeros to P and return the remaining ciphertext (last chunk marked)."""
        if self._finished:
            raise ValueError("the encryptor is finished")
        if self._fed != self.size:
            raise ValueError(f"{self._fed} bytes fed, {self.size} announced")
        self._finished = True
        self.sha256 = self._hash.hexdigest()
        remaining = self.padded - (self._index * FILE_CHUNK)
        rest = memoryview(self._pending + bytes(remaining - len(self._pending)))
        self._pending = bytearray()
        return self._seal([rest[i : i + FILE_CHUNK] for i in range(0, len(rest), FILE_CHUNK)])


def encrypt_file(data: bytes, key: bytes | None = None, prefix: bytes | None = None):
    """(blob, encryptor) for a whole file in memory: small files and tests."""
    encryptor = FileEncryptor(len(data), key, prefix)
    blob = encryptor.update(data) + encryptor.finish()
    return blob, encryptor


# --- streaming decryption -----------------------------------------------------------------


def _meta_fields(meta: object) -> tuple[bytes, bytes, int, str]:
    """(key, prefix, size, sha256) of a file object; ``bad_meta`` if any is malformed."""
    if not isinstance(meta, dict):
        raise FileRefused("bad_meta", "file must be a JSON object")
    try:
        key = b64decode(meta.get("key"), FILE_KEY_BYTES)
        prefix = b64decode(meta.get("prefix"), FILE_PREFIX_BYTES)
    except ProtocolError as exc:
        raise FileRefused("bad_meta", "key must be 32 and prefix 8 bytes of base64") from exc
    size = meta.get("size")
    if type(size) is not int or not 0 <= size <= MAX_FILE_BYTES:
        raise FileRefused("bad_meta", f"size must be an integer 0..{MAX_FILE_BYTES}")
    sha256 = meta.get("sha256")
    if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
        raise FileRefused("bad_meta", "sha256 must be 64 lowercase hex digits")
    return key, prefix, size, sha256


class FileDecryptor:
    """Decrypts and checks a §10.2 blob against its ``file`` object, chunk by chunk.

    Only ``key``, ``prefix``, ``size`` and ``sha256`` of ``file_meta`` are used (malformed:
    ``bad_meta``). ``update(data)`` returns the plaintext (without padding; a bytearray)
    of the chunks that ``data`` completes, after each passed its tag, last-flag and
    padding checks;
    ``finish()`` checks the total length and the SHA-256. Nothing is genuine until
    ``finish()`` returned. Every failure raises ``FileRefused``, in this order: more bytes
    than ``blob_size(size)`` (``bad_length``, as soon as they arrive); per chunk, a tag
    that fails (``bad_chunk``, also swapped or reordered chunks) unless it holds under the
    other last flag (``bad_last``), then non-zero padding (``bad_padding``); at the end,
    fewer bytes (``bad_length``), then the hash (``bad_hash``).
    """

    def __init__(self, file_meta: dict) -> None:
        self.key, self.prefix, self.size, self.sha256 = _meta_fields(file_meta)
        self.padded = padme(self.size)
        self.blob_size = blob_size(self.size)
        self._count = chunk_count(self.padded)
        self._index = 0
        self._received = 0
        self._pending = bytearray()
        self._hash = hashlib.sha256()
        self._finished = False

    def _chunk_length(self, index: int) -> int:
        if index < self._count - 1:
            return FILE_CHUNK + FILE_TAG
        return self.padded - FILE_CHUNK * (self._count - 1) + FILE_TAG

    def _open(self, sealed: list) -> bytearray:
        """The checked plaintext of the next ``sealed`` chunks, decrypted straight into
        one buffer; the first chunk that fails raises."""
        keeps = []
        for i, chunk in enumerate(sealed):
            start = (self._index + i) * FILE_CHUNK
            keeps.append(max(0, min(len(chunk) - FILE_TAG, self.size - start)))
        out = bytearray(sum(keeps))
        view, offset = memoryview(out), 0
        for chunk, keep in zip(sealed, keeps, strict=True):
            index, last = self._index, self._index == self._count - 1
            body, tag = chunk[:-FILE_TAG], chunk[-FILE_TAG:]
            padded = keep < len(body)
            target = memoryview(bytearray(len(body))) if padded else view[offset : offset + keep]
            cipher = _cipher(self.key, self.prefix, index, last)
            cipher.decrypt(body, output=target)
            try:
                cipher.verify(tag)
            except ValueError:
                try:
                    _cipher(self.key, self.prefix, index, not last).decrypt_and_verify(body, tag)
                except ValueError:
                    raise FileRefused("bad_chunk", f"chunk {index} does not decrypt") from None
                raise FileRefused("bad_last", f"chunk {index} has the wrong last flag") from None
            if padded:
                if any(target[keep:]):
                    raise FileRefused("bad_padding", "the padding is not zeros")
                view[offset : offset + keep] = target[:keep]
            self._hash.update(view[offset : offset + keep])
            offset += keep
            self._index += 1
        return out

    def update(self, data: bytes | bytearray | memoryview) -> bytearray:
        """The checked plaintext of the chunks that ``data`` completes (maybe empty)."""
        if self._finished:
            raise ValueError("the decryptor is finished")
        self._received += len(data)
        if self._received > self.blob_size:
            raise FileRefused("bad_length", f"the blob is longer than {self.blob_size} bytes")
        view = memoryview(data)
        sealed = []
        index = self._index
        if self._pending:
            length = self._chunk_length(index)
            take = min(length - len(self._pending), len(view))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < length:
                return bytearray()
            sealed.append(bytes(self._pending))
            self._pending = bytearray()
            index += 1
        while index < self._count and len(view) >= self._chunk_length(index):
            length = self._chunk_length(index)
            sealed.append(view[:length])
            view = view[length:]
            index += 1
        out = self._open(sealed)
        self._pending += view
        return out

    def finish(self) -> None:
        """Check that the whole blob came and that the plaintext's SHA-256 is ``sha256``."""
        if self._finished:
            raise ValueError("the decryptor is finished")
        self._finished = True
        if self._received != self.blob_size or self._index != self._count:
            raise FileRefused("bad_length", f"the blob is shorter than {self.blob_size} bytes")
        if self._hash.hexdigest() != self.sha256:
            raise FileRefused("bad_hash", "the file's SHA-256 does not match")


def decrypt_file(file_meta: dict, blob: bytes) -> bytes:
    """The checked plaintext of a whole blob in memory: small files and tests."""
    decryptor = FileDecryptor(file_meta)
    data = decryptor.update(blob)
    decryptor.finish()
    return data


# --- the file payload (§10.1, §10.2) ------------------------------------------------------


def _bad_meta(detail: str) -> FileRefused:
    return FileRefused("bad_meta", detail)


def _is_int(value: object, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def validate_file_payload(obj: object) -> dict:
    """Check a ``file`` payload ``{"type": "file", "file": {…}, "text"?, "reply_to"?}``
    field by field and return its ``file`` object; anything malformed is
    ``FileRefused('bad_meta')``. Unknown fields are ignored."""
    if not isinstance(obj, dict) or obj.get("type") != "file":
        raise _bad_meta('the payload must be an object of type "file"')
    meta = obj.get("file")
    _meta_fields(meta)
    blob = meta.get("blob")
    if not isinstance(blob, str) or not _BLOB_ID_RE.fullmatch(blob):
        raise _bad_meta("blob must be 22 characters of URL-safe base64")
    name = meta.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS:
        raise _bad_meta(f"name must be 1..{MAX_NAME_CHARS} characters")
    if not is_mime_type(meta.get("mime")):
        raise _bad_meta("mime must be a type/subtype of at most 255 characters")
    for field in ("width", "height"):
        if field in meta and not _is_int(meta[field], 1, MAX_DIMENSION):
            raise _bad_meta(f"{field} must be an integer 1..{MAX_DIMENSION}")
    if "thumb" in meta:
        try:
            thumb = b64decode(meta["thumb"])
        except ProtocolError as exc:
            raise _bad_meta("thumb must be canonical base64") from exc
        if not 0 < len(thumb) <= THUMB_MAX_BYTES:
            raise _bad_meta(f"thumb must be 1..{THUMB_MAX_BYTES} bytes")
    if "text" in obj and (not isinstance(obj["text"], str) or len(obj["text"]) > MAX_TEXT_CHARS):
        raise _bad_meta(f"text must be a string of at most {MAX_TEXT_CHARS} characters")
    if "reply_to" in obj:
        ref = obj["reply_to"]
        if (
            not isinstance(ref, dict)
            or not _is_int(ref.get("sender_id"), 1, 2**53 - 1)
            or not is_client_msg_id(ref.get("client_msg_id"))
        ):
            raise _bad_meta("reply_to must be {sender_id, client_msg_id}")
    return meta


def file_payload(meta: dict, text: str | None = None, reply_to: dict | None = None) -> dict:
    """The plaintext of a file message: ``{"type": "file", "file": meta}`` with the caption
    ``text`` and ``reply_to`` when given; checked by ``validate_file_payload``."""
    payload: dict = {"type": "file", "file": meta}
    if text is not None:
        payload["text"] = text
    if reply_to is not None:
        payload["reply_to"] = reply_to
    validate_file_payload(payload)
    return payload


def is_mime_type(value: object) -> bool:
    """Whether ``value`` has the shape of a MIME type ``type/subtype`` (no parameters) of
    at most 255 characters."""
    return (
        isinstance(value, str) and len(value) <= MAX_MIME_CHARS and bool(_MIME_RE.fullmatch(value))
    )


def is_inline_image(meta: dict) -> bool:
    """Whether a file's (claimed) type is one shown inline: PNG, JPEG, GIF or WebP."""
    return meta.get("mime") in INLINE_IMAGE_TYPES


# --- names --------------------------------------------------------------------------------


def clean_file_name(name: str) -> str:
    """A name safe to save or show: NFC; without path separators (``/``, ``\\``) and
    control or format characters (Cc, Cf: bidi overrides too); without leading dots or
    spaces and trailing dots or spaces; at most 120 code points, keeping an extension of
    up to 16; ``"file"`` if nothing is left."""
    if not isinstance(name, str):
        return "file"
    text = unicodedata.normalize("NFC", name)
    text = "".join(
        ch for ch in text if ch not in "/\\" and unicodedata.category(ch) not in ("Cc", "Cf")
    )
    text = text.lstrip(". ").rstrip(". ")
    if len(text) > MAX_CLEAN_NAME_CHARS:
        stem, dot, ext = text.rpartition(".")
        if dot and stem and 0 < len(ext) <= _MAX_EXTENSION_CHARS:
            keep = MAX_CLEAN_NAME_CHARS - len(ext) - 1
            text = stem[:keep].rstrip(". ") + "." + ext
        else:
            text = text[:MAX_CLEAN_NAME_CHARS].rstrip(". ")
    return text or "file"
