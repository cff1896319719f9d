"""Attachments in the browser app, for tests and screenshot scripts: choose files and
send them, catch the id the server gave an upload, and change a stored blob on disk."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from .browser import ChatUser

#: Bytes of one stored chunk of a blob: 65,536 of ciphertext and its 16-byte tag (§10.2).
CHUNK_ON_DISK = 65536 + 16


def attach(user: ChatUser, *paths: Path, caption: str = "") -> None:
    """Choose files with the attach button's input, type a caption, press Enter."""
    user.page.set_input_files("#attach-input", [str(p) for p in paths])
    for p in paths:
        expect(user.page.locator(".attach-chip", has_text=p.name)).to_be_visible()
    user.send(caption)


def uploaded_blob_id(user: ChatUser, send) -> str:
    """Run `send` (which uploads one file); the id the server gave its blob."""
    with user.page.expect_response(
        lambda r: r.url.endswith("/api/blobs/") and r.request.method == "POST"
    ) as info:
        send()
    assert info.value.status == 201, info.value.text()
    return info.value.json()["blob"]["id"]


def swap_first_chunks(stack, blob_id: str) -> None:
    """In the server's blob storage (a stack on the file store): swap the first two
    chunks, each with its tag."""
    path = Path(stack.env["CHAT_VAR_DIR"]) / "blobs" / blob_id[:2] / blob_id
    data = path.read_bytes()
    step = CHUNK_ON_DISK
    assert len(data) >= 2 * step
    path.write_bytes(data[step : 2 * step] + data[:step] + data[2 * step :])
