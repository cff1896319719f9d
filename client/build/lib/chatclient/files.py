"""Sending and receiving encrypted attachments (PROTOCOL §10.2) for ``ChatClient``.

``send_file`` reads the file once, encrypting it chunk by chunk straight into the upload
(``POST /api/blobs/``, streamed with its exact Content-Length) while hashing it, then
sends the ``file`` message naming the blob through the client's normal send path.
``download`` streams the blob through a ``FileDecryptor`` into a temporary file next to
the destination and renames it only once every check passed: a refused file leaves
nothing behind. ``make_thumbnail`` uses Pillow (imported when first needed).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import mimetypes
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from . import attachments
from .attachments import FileRefused, clean_file_name
from .errors import ChatError, MessageTooLong
from .events import IncomingMessage
from .protocol import MAX_TEXT_CHARS, ProtocolError, b64encode

READ_PIECE = 1 << 20  # bytes read from the file per encryption step
THUMB_SIDE = 320
THUMB_QUALITIES = (80, 70, 60, 50, 40, 30)
THUMB_SIDES = (THUMB_SIDE, 240, 160, 96)
DEFAULT_MIME = "application/octet-stream"
_PIL_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Thumbnail:
    """An image's displayed size (after its EXIF orientation) and a JPEG thumbnail of at
    most 320 px a side and 16 KiB; ``mime`` is the type Pillow read it as."""

    width: int
    height: int
    jpeg: bytes
    mime: str


def make_thumbnail(source: bytes | str | os.PathLike | BinaryIO) -> Thumbnail | None:
    """A thumbnail of a PNG, JPEG, GIF (first frame) or WebP image, or None when Pillow is
    missing or cannot read it as one of those (the file is then sent without one)."""
    try:
        from PIL import Image, ImageOps
    except ImportError:
        return None
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    try:
        with Image.open(source, formats=list(_PIL_MIME)) as image:
            mime = _PIL_MIME[image.format]
            width, height = image.size
            if image.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated a quarter turn
                width, height = height, width
            if not (
                0 < width <= attachments.MAX_DIMENSION and 0 < height <= attachments.MAX_DIMENSION
            ):
                return None
            image.draft("RGB", (THUMB_SIDE, THUMB_SIDE))  # JPEG: decode at a smaller scale
            upright = ImageOps.exif_transpose(image)
            rgba = upright.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        for side in THUMB_SIDES:
            small = flat.copy()
            small.thumbnail((side, side))
            for quality in THUMB_QUALITIES:
                out = io.BytesIO()
                small.save(out, "JPEG", quality=quality, optimize=True)
                if out.tell() <= attachments.THUMB_MAX_BYTES:
                    return Thumbnail(width, height, out.getvalue(), mime)
    except Exception:  # noqa: BLE001 - any image Pillow cannot read gets no thumbnail
        return None
    return None


def guess_mime(name: str) -> str:
    """The type a file name suggests (``application/octet-stream`` if none or malformed)."""
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed if guessed and attachments.is_mime_type(guessed) else DEFAULT_MIME


def _encrypted(
    handle: BinaryIO, encryptor: attachments.FileEncryptor, progress: Progress | None
) -> Iterator[bytes]:
    """The blob, piece by piece, as ``handle`` is read (exactly ``encryptor.size`` bytes)."""
    done, left = 0, encryptor.size
    while left:
        data = handle.read(min(READ_PIECE, left))
        if not data:
            raise ChatError("the file became shorter while it was being sent")
        left -= len(data)
        out = encryptor.update(data)
        done += len(out)
        if progress is not None:
            progress(done, encryptor.blob_size)
        if out:
            yield out
    out = encryptor.finish()
    if progress is not None:
        progress(encryptor.blob_size, encryptor.blob_size)
    yield out


async def send_file(
    client,
    target,
    source: bytes | str | os.PathLike,
    *,
    name: str | None = None,
    mime: str | None = None,
    caption: str | None = None,
    reply_to: dict | None = None,
    progress: Progress | None = None,
) -> dict:
    """See ``ChatClient.send_file``."""
    in_memory = isinstance(source, bytes | bytearray)
    if name is None:
        name = "file" if in_memory else Path(source).name
    name = clean_file_name(name)
    mime = mime or guess_mime(name)
    if not attachments.is_mime_type(mime):
        raise ProtocolError("bad_request", f"not a MIME type: {mime!r}")
    if caption is not None and len(caption) > MAX_TEXT_CHARS:
        raise MessageTooLong(len(caption), MAX_TEXT_CHARS, "caption")
    size = len(source) if in_memory else os.stat(source).st_size
    if size > attachments.MAX_FILE_BYTES:
        raise ProtocolError("too_large", f"files are at most {attachments.MAX_FILE_BYTES} bytes")
    conversation = await client.conversation(target)  # not a member: fails before uploading
    extra: dict = {}
    if mime in attachments.INLINE_IMAGE_TYPES:
        thumb = await asyncio.to_thread(make_thumbnail, bytes(source) if in_memory else source)
        if thumb is not None:
            mime = thumb.mime
            extra = {"width": thumb.width, "height": thumb.height, "thumb": b64encode(thumb.jpeg)}
    encryptor = attachments.FileEncryptor(size)
    with io.BytesIO(source) if in_memory else open(source, "rb") as handle:  # noqa: SIM115
        blob = await client.session.upload_blob(
            _encrypted(handle, encryptor, progress), encryptor.blob_size
        )
    meta = {
        "blob": blob["id"],
        "key": b64encode(encryptor.key),
        "prefix": b64encode(encryptor.prefix),
        "size": size,
        "sha256": encryptor.sha256,
        "name": name,
        "mime": mime,
        **extra,
    }
    payload = attachments.file_payload(meta, caption, reply_to)
    return await client.send(conversation, payload, blobs=[blob["id"]])


def file_of(message: IncomingMessage) -> dict:
    """The checked ``file`` object of an opened message; ``ChatError`` if it is not a
    genuine file message, ``FileRefused('bad_meta')`` if its description is malformed or
    names a blob that the stored message does not."""
    if not message.verified:
        raise ChatError(f"message {message.id} is not shown ({message.status}): no file to fetch")
    if not message.content or message.content.get("type") != "file":
        raise ChatError(f"message {message.id} is not a file")
    meta = attachments.validate_file_payload(message.content)
    if meta["blob"] not in message.blobs:
        raise FileRefused("bad_meta", "the file names a blob its message does not")
    return meta


def unique_path(directory: Path, name: str) -> Path:
    """``directory/name``, or ``name (1).ext``, ``name (2).ext``, … the first that is free."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    candidate, n = directory / name, 0
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = directory / (f"{stem} ({n}).{ext}" if ext else f"{stem} ({n})")
    return candidate


def _place(temp: Path, dest: Path, exact: bool) -> Path:
    """Move the checked temporary file to ``dest`` (replacing it when ``exact``), or to the
    first free ``name (n).ext`` beside it without overwriting anything."""
    if exact:
        os.replace(temp, dest)
        return dest
    while True:
        candidate = unique_path(dest.parent, dest.name)
        try:
            os.link(temp, candidate)  # fails if someone took the name meanwhile
        except FileExistsError:
            continue
        except OSError:
            os.replace(temp, candidate)  # a filesystem without hard links
            return candidate
        temp.unlink()
        return candidate


async def download(
    client,
    message: IncomingMessage | dict,
    dest: str | os.PathLike = ".",
    *,
    progress: Progress | None = None,
) -> Path:
    """See ``ChatClient.download``."""
    if not isinstance(message, IncomingMessage):
        message = await client.open(message)
    meta = file_of(message)
    dest = Path(dest)
    exact = not dest.is_dir()
    target = dest if exact else dest / clean_file_name(meta["name"])
    decryptor = attachments.FileDecryptor(meta)
    fd, temp_name = tempfile.mkstemp(prefix=".chat-download-", suffix=".part", dir=target.parent)
    temp = Path(temp_name)
    received = 0
    try:
        with os.fdopen(fd, "wb") as out:

            def sink(piece: bytes) -> None:
                nonlocal received
                received += len(piece)
                out.write(decryptor.update(piece))
                if progress is not None:
                    progress(min(received, decryptor.blob_size), decryptor.blob_size)

            await client.session.download_blob(meta["blob"], sink)
            decryptor.finish()
            out.flush()
            os.fsync(out.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        placed = await asyncio.to_thread(_place, temp, target, exact)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    return placed


async def find_message(client, message_id: int) -> dict | None:
    """The stored message with this id in one of my conversations (newest pages first),
    or None. Ids grow with time, so each conversation is read back only until older ids."""
    for conversation in await client.session.conversations():
        before = None
        while True:
            page = await client.session.history(conversation["id"], before_seq=before, limit=100)
            messages = page["messages"]
            for message in messages:
                if message["id"] == message_id:
                    return message
            if not messages or not page["has_more"] or messages[0]["id"] < message_id:
                break
            before = messages[0]["seq"]
    return None
