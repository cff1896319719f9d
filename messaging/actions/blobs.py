"""Blob writes (§10.2): store an upload, name blobs in a send, delete blobs' files.

Refusals raise `ActionError` and leave nothing stored: a refused upload's partial file is
deleted before the error is raised.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from accounts.errors import ActionError
from accounts.models import User

from .. import blobs
from ..models import Blob

logger = logging.getLogger(__name__)


class _TooLarge(Exception):
    pass


class _CountingReader:
    """The request body read through, counted; past `limit` bytes it raises `_TooLarge`."""

    def __init__(self, stream, limit: int):
        self.stream = stream
        self.limit = limit
        self.count = 0
        self.name = None
        self.closed = False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        if self.count > self.limit:
            raise _TooLarge
        return data


def too_large() -> ActionError:
    return ActionError(
        "too_large", f"A blob is at most {settings.MAX_BLOB_BYTES} bytes (a 100 MiB file)."
    )


def over_quota() -> ActionError:
    return ActionError(
        "over_quota",
        f"Your attachments would take more than {settings.BLOB_QUOTA_BYTES} bytes: "
        "take back old messages with files to make room.",
    )


def bad_length() -> ActionError:
    return ActionError(
        "bad_request",
        "A blob's length is P + 16 * ceil(P / 65536) for a padded size P (PROTOCOL §10.2).",
    )


def check_declared(user: User, length: int | None) -> None:
    """What can be refused from the `Content-Length` alone, before any byte is read."""
    if length is None:
        return
    if length > settings.MAX_BLOB_BYTES:
        raise too_large()
    if not blobs.is_blob_length(length):
        raise bad_length()
    if blobs.stored_bytes(user.pk) + length > settings.BLOB_QUOTA_BYTES:
        raise over_quota()


def upload(user: User, body, declared: int | None) -> Blob:
    """Copy the request body (a file object: read in chunks, never whole) into storage
    under a new id and record it, unnamed. `declared` is the Content-Length, if any.

    Refuses `too_large` past `MAX_BLOB_BYTES` bytes read, `bad_request` for a length that
    is no blob's, `over_quota` when the user's blobs would pass `BLOB_QUOTA_BYTES` (checked
    again under a lock on the user's row, so two uploads at once cannot both squeeze in).
    """
    check_declared(user, declared)
    blob_id = blobs.new_blob_id()
    name = blobs.storage_name(blob_id)
    store = blobs.storage()
    reader = _CountingReader(body, settings.MAX_BLOB_BYTES)
    try:
        saved = store.save(name, File(reader, name=name))
    except BaseException:
        _delete_files([name])
        if reader.count > reader.limit:  # also when a storage backend wrapped _TooLarge
            raise too_large() from None
        raise
    if saved != name:  # a random 128-bit id never clashes; if it did, refuse
        _delete_files([saved])
        raise ActionError("bad_request", "Try again.")
    size = reader.count
    try:
        if (declared is not None and size != declared) or not blobs.is_blob_length(size):
            raise bad_length()
        with transaction.atomic():
            User.objects.select_for_update().filter(pk=user.pk).first()
            if blobs.stored_bytes(user.pk) + size > settings.BLOB_QUOTA_BYTES:
                raise over_quota()
            return Blob.objects.create(id=blob_id, uploader=user, size=size)
    except BaseException:
        _delete_files([name])
        raise


def name_blobs(sender_id: int, message_id: int, blob_ids: list[str]) -> None:
    """Name the blobs in the send's transaction: each must be the sender's and unnamed,
    else `bad_request` (the caller's transaction rolls back: nothing is stored)."""
    if not blob_ids:
        return
    named = Blob.objects.filter(
        pk__in=blob_ids, uploader_id=sender_id, message__isnull=True
    ).update(message_id=message_id)
    if named != len(blob_ids):
        raise ActionError(
            "bad_request",
            "blobs must be your own uploads that no message names yet.",
            fields={"blobs": ["not your unsent upload"]},
        )


def delete_blobs_of(message_id: int) -> list[str]:
    """Delete the rows of the message's blobs (in the caller's transaction); the storage
    files go after commit. Returns the ids."""
    ids = list(Blob.objects.filter(message_id=message_id).values_list("pk", flat=True))
    if ids:
        Blob.objects.filter(pk__in=ids).delete()
        names = [blobs.storage_name(i) for i in ids]
        transaction.on_commit(lambda: _delete_files(names))
    return ids


def _delete_files(names: list[str]) -> None:
    """Delete storage files; a failure is logged (the purge deletes orphaned files)."""
    store = blobs.storage()
    for name in names:
        try:
            store.delete(name)
        except Exception:
            logger.exception("could not delete blob file %s", name)


def purge(now=None) -> tuple[int, int]:
    """Delete unnamed blobs older than BLOB_UNNAMED_TTL (rows, then their files) and
    storage files without a row older than BLOB_ORPHAN_GRACE (an upload in flight has its
    file before its row). Returns (unnamed blobs deleted, orphaned files deleted)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.BLOB_UNNAMED_TTL)
    with transaction.atomic():
        ids = list(
            Blob.objects.select_for_update()
            .filter(message__isnull=True, created__lt=cutoff)
            .values_list("pk", flat=True)
        )
        Blob.objects.filter(pk__in=ids).delete()
    _delete_files([blobs.storage_name(i) for i in ids])
    return len(ids), _purge_orphans(now - timedelta(seconds=settings.BLOB_ORPHAN_GRACE))


def _purge_orphans(older_than) -> int:
    store = blobs.storage()
    deleted = 0
    try:
        folders, _ = store.listdir("")
    except FileNotFoundError:
        return 0
    for folder in folders:
        _, files = store.listdir(folder)
        known = set(Blob.objects.filter(pk__in=files).values_list("pk", flat=True))
        for file in files:
            name = f"{folder}/{file}"
            if file in known or store.get_modified_time(name) >= older_than:
                continue
            _delete_files([name])
            deleted += 1
    return deleted
