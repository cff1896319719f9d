"""Encrypted attachments (PROTOCOL §10.2), read side: blob lengths, who may read a blob,
the `blobs` storage and streaming its bytes. Writes are in `actions.blobs`."""

import asyncio
import re
import secrets
from collections.abc import AsyncIterator

from django.conf import settings
from django.core.files.storage import storages
from django.db.models import Sum

from accounts.errors import ActionError

from .models import Blob, Membership

FILE_CHUNK = 65536
FILE_TAG = 16
MAX_FILE_BYTES = 100 * 2**20
BLOB_ID = re.compile(r"[A-Za-z0-9_-]{22}")
READ_CHUNK = 256 * 1024  # bytes per storage read while streaming a download


def new_blob_id() -> str:
    """128 random bits as 22 characters of URL-safe base64 without padding."""
    return secrets.token_urlsafe(16)


def storage():
    return storages["blobs"]


def storage_name(blob_id: str) -> str:
    """`<first two characters>/<id>`: at most 4,096 names a directory level."""
    return f"{blob_id[:2]}/{blob_id}"


def padme(length: int) -> int:
    """max(256, Padmé(length)), in exact integer arithmetic (§10.2)."""
    if length <= 256:
        return 256
    e = length.bit_length() - 1
    s = e.bit_length()
    mask = (1 << (e - s)) - 1
    return (length + mask) & ~mask


MAX_PADDED = padme(MAX_FILE_BYTES)


def blob_length(padded: int) -> int:
    """The blob's length for a padded file of `padded` bytes: its chunks with their tags."""
    return padded + FILE_TAG * -(-padded // FILE_CHUNK)


def is_blob_length(length: int) -> bool:
    """Whether `length` is P + 16·⌈P/65536⌉ for some P = padme(L), L ≤ 100 MiB."""
    if length < blob_length(256) or length > blob_length(MAX_PADDED):
        return False
    chunks = -(-length // (FILE_CHUNK + FILE_TAG))
    padded = length - FILE_TAG * chunks
    return blob_length(padded) == length and padme(padded) == padded


def stored_bytes(user_id: int) -> int:
    """What the user's blobs (named or not) take in storage."""
    return Blob.objects.filter(uploader_id=user_id).aggregate(total=Sum("size"))["total"] or 0


def require_readable(user, blob_id: str) -> Blob:
    """The blob, if `user` may read it: its uploader while no message names it; once named,
    whoever may read the naming message (a member, or a former member for messages up to
    her `left_seq`). Anything else, unknown ids included, is `not_found` (no oracle)."""
    blob = (
        Blob.objects.select_related("message").filter(pk=blob_id).first()
        if BLOB_ID.fullmatch(blob_id)
        else None
    )
    if blob is not None:
        message = blob.message
        if message is None:
            if blob.uploader_id == user.pk:
                return blob
        elif not message.deleted:
            membership = Membership.objects.filter(
                conversation_id=message.conversation_id, user=user
            ).first()
            if membership is not None and (
                membership.left_seq is None or message.seq <= membership.left_seq
            ):
                return blob
    raise ActionError("not_found", "No such blob.")


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `bytes=` range, or None when the header is not one
    (then the whole blob is served, RFC 9110 §14.2). Raises ValueError when unsatisfiable."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # the last N bytes
        n = int(last)
        if n == 0:
            raise ValueError("empty suffix range")
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise ValueError("range starts past the end")
    return start, end


async def stream(blob_id: str, start: int, length: int) -> AsyncIterator[bytes]:
    """`length` bytes of the stored blob from `start`, read in a worker thread a chunk at a
    time (an async iterator: Django would read a sync one whole into memory under ASGI)."""
    handle = await asyncio.to_thread(storage().open, storage_name(blob_id), "rb")
    try:
        if start:
            await asyncio.to_thread(handle.seek, start)
        left = length
        while left > 0:
            chunk = await asyncio.to_thread(handle.read, min(READ_CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


def accel_path(blob_id: str) -> str | None:
    """The internal nginx location of the blob's file, when downloads go through nginx
    (`BLOB_ACCEL_REDIRECT` set and the storage is the filesystem)."""
    prefix = settings.BLOB_ACCEL_REDIRECT
    if not prefix or getattr(settings, "BLOB_S3_BUCKET", ""):
        return None
    return prefix.rstrip("/") + "/" + storage_name(blob_id)
