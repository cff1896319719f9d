"""Encrypted attachments in the browser (PROTOCOL §10.2, issue 13) on a live daphne:
files and photos sent and received between browsers and with the Python client
(`chat-client send --file`, `download`), checked byte for byte, name and type, and blobs
changed in the server's storage refused with no bytes offered."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from scripts.people.attachments import attach, swap_first_chunks, uploaded_blob_id
from scripts.people.browser import PASSWORD, ChatUser
from scripts.people.photos import make_photo
from tests.test_client_cli import Cli

pytestmark = pytest.mark.browser

FILE_BYTES = 5 * 2**20
CLI_PASSPHRASE = "granite meadow copper whistle"


@pytest.fixture
def cli_user(stack, tmp_path):
    """Factory: a `chat-client` profile registered under `username` with a device set up."""

    def make(username: str) -> Cli:
        cli = Cli(stack.base_url, tmp_path / username, passphrase=CLI_PASSPHRASE, password=PASSWORD)
        assert "registered and logged in" in cli.run("register", username).stdout
        assert "registered; key file" in cli.run("device", "setup").stdout
        cli.username = username
        return cli

    return make


def file_message(user: ChatUser, name: str):
    return user.page.locator(".messages .msg", has=user.page.locator(".att-name", has_text=name))


def download(user: ChatUser, name: str, tmp_path: Path) -> tuple[str, bytes]:
    """Click Download on the file message `name`; the suggested name and the bytes saved."""
    with user.page.expect_download() as info:
        file_message(user, name).get_by_role("button", name=f"Download {name}").click()
    target = tmp_path / f"got-{user.username}-{name}"
    info.value.save_as(target)
    return info.value.suggested_filename, target.read_bytes()


def view_image(user: ChatUser, name: str, tmp_path: Path) -> tuple[int, bytes]:
    """Open the image `name` in the viewer: the full image's natural width (shown from a
    blob: URL) and the bytes its Save button gives; closing the viewer revokes the URL."""
    page = user.page
    page.get_by_role("button", name=f"Open image {name}").click()
    full = page.locator("dialog.viewer img[data-full=true]")
    expect(full).to_be_visible()
    url = full.get_attribute("src")
    assert url.startswith("blob:"), url
    width = full.evaluate("img => img.decode().then(() => img.naturalWidth)")
    with page.expect_download() as info:
        page.locator("dialog.viewer").get_by_role("button", name=f"Download {name}").click()
    target = tmp_path / f"viewer-{user.username}-{name}"
    info.value.save_as(target)
    assert info.value.suggested_filename == name
    page.locator("dialog.viewer").get_by_role("button", name="Close").click()
    expect(page.locator("dialog.viewer")).to_have_count(0)
    revoked = page.evaluate(
        """(url) => new Promise((resolve) => { const img = new Image();
             img.onload = () => resolve(false); img.onerror = () => resolve(true); img.src = url; })""",
        url,
    )
    assert revoked, "the viewer's blob: URL outlived the viewer"
    probe = "console error: Failed to load resource: net::ERR_FILE_NOT_FOUND"
    user.problems = [p for p in user.problems if p != probe]  # the probe's own failed load
    return width, target.read_bytes()


JS_DROP_AND_PASTE = """async () => {
  const drop = (files) => {
    const dt = new DataTransfer();
    for (const f of files) dt.items.add(f);
    const pane = document.querySelector('.pane');
    pane.dispatchEvent(new DragEvent('dragenter', { dataTransfer: dt, bubbles: true }));
    pane.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  };
  drop([new File(['a,b\\n1,2\\n'], 'dropped.csv', { type: 'text/csv' })]);
  const dt = new DataTransfer();
  dt.items.add(new File([new Uint8Array([0x89, 0x50, 0x4e, 0x47])], 'image.png', { type: 'image/png' }));
  document.querySelector('#composer-input').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  drop([new File([new Uint8Array(100 * 2 ** 20 + 1)], 'huge.iso')]);
}"""


def stage_by_drop_and_paste(user: ChatUser) -> None:
    """Drop a file on the pane and paste an image into the box: both wait as chips; then a
    file over 100 MiB is dropped and refused with a sentence. The chips are removed."""
    page = user.page
    page.evaluate(JS_DROP_AND_PASTE)
    expect(page.locator(".attach-chip")).to_have_count(2)
    expect(page.locator(".attach-chip").first).to_contain_text("dropped.csv")
    expect(page.locator(".attach-chip").last).to_contain_text("Pasted image.png")
    expect(page.locator(".attach-error")).to_have_text(
        "“huge.iso” is 100 MB; files can be at most 100 MB."
    )
    for name in ("dropped.csv", "Pasted image.png"):
        page.get_by_role("button", name=f"Remove {name}").click()
    expect(page.locator(".attach-tray")).to_be_hidden()


def test_browser_to_browser_file_and_photo_and_tampered_blobs(people, stack, tmp_path):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    alice.send("files coming")
    bob.open_conversation(alice.username)
    bob.expect_message("files coming")
    # a stranger's first message is a request (PROTOCOL §6); the list previews it once accepted
    bob.page.locator(".request-banner").get_by_role("button", name="Accept").click()

    data = os.urandom(FILE_BYTES)
    doc = tmp_path / "quarterly report.pdf"
    doc.write_bytes(data)
    photo = tmp_path / "harbour.jpg"
    photo_bytes = make_photo(photo)
    attach(alice, doc, photo, caption="the report and a photo")

    # the photo's thumbnail shows inline on both sides; the file with name, size and type
    for user in (alice, bob):
        thumb = user.page.locator(f"button[aria-label='Open image {photo.name}'] img")
        expect(thumb).to_be_visible(timeout=30_000)
        assert thumb.get_attribute("src").startswith("data:image/jpeg;base64,")
        card = file_message(user, doc.name)
        expect(card).to_contain_text("5 MB · PDF")
        expect(card.locator(".msg-text")).to_have_text("the report and a photo")
    expect(alice.page.locator(".messages .msg.own:not(.pending)")).to_have_count(3)

    name, got = download(bob, doc.name, tmp_path)
    assert (name, hashlib.sha256(got).hexdigest()) == (doc.name, hashlib.sha256(data).hexdigest())
    assert view_image(bob, photo.name, tmp_path) == (1600, photo_bytes)
    expect(bob.page.locator(".conv-item", has_text=alice.username)).to_contain_text("Photo")

    # dropped files and a pasted image wait as chips; over 100 MiB is refused at once
    stage_by_drop_and_paste(alice)

    # an image without a thumbnail (too wide to make one) downloads by itself and shows
    strip = tmp_path / "strip.png"
    Image.new("RGB", (70_000, 1), (200, 40, 40)).save(strip)
    attach(alice, strip)
    inline = bob.page.locator(f"button[aria-label='Open image {strip.name}'] img")
    expect(inline).to_have_attribute("src", re.compile(r"^blob:"), timeout=30_000)
    assert inline.evaluate("img => img.decode().then(() => img.naturalWidth)") == 70_000
    assert alice.problems == [] and bob.problems == [], (alice.problems, bob.problems)

    # a file and a photo whose blobs are changed in the server's storage: refused, and
    # neither bytes nor thumbnail are offered
    downloads = []
    bob.page.on("download", lambda d: downloads.append(d.suggested_filename))
    ledger = tmp_path / "ledger.csv"
    ledger.write_bytes(os.urandom(200_000))
    swap_first_chunks(stack, uploaded_blob_id(alice, lambda: attach(alice, ledger)))
    snap = tmp_path / "snap.jpg"
    make_photo(snap)
    swap_first_chunks(stack, uploaded_blob_id(alice, lambda: attach(alice, snap)))

    refused = "This file was refused: it was changed or damaged on the way"
    ledger_msg = bob.page.locator(".messages .msg[data-seq='5']")
    ledger_msg.get_by_role("button", name=f"Download {ledger.name}").click()
    expect(ledger_msg.locator(".att-refused-text")).to_contain_text(refused)
    # the attachment offers nothing (the message's own reply/react toolbar stays)
    expect(ledger_msg.locator(".attachment").get_by_role("button")).to_have_count(0)
    expect(ledger_msg.locator(".att-name")).to_have_count(0)

    bob.page.get_by_role("button", name=f"Open image {snap.name}").click()
    expect(bob.page.locator("dialog.viewer")).to_have_count(0)
    snap_msg = bob.page.locator(".messages .msg[data-seq='6']")
    expect(snap_msg.locator(".att-refused-text")).to_contain_text(refused)
    expect(snap_msg.locator("img")).to_have_count(0)
    expect(snap_msg.locator(".attachment").get_by_role("button")).to_have_count(0)
    assert downloads == []
    assert alice.problems == [] and bob.problems == [], (alice.problems, bob.problems)


def test_python_client_and_browser_exchange_a_file_and_a_photo_both_ways(
    people, cli_user, tmp_path
):
    alice = people("alice").start()
    carl = cli_user(f"carl{os.urandom(3).hex()}")

    # the Python client sends a 5 MiB file and a photo; the browser shows and checks them
    data = os.urandom(FILE_BYTES)
    doc = tmp_path / "budget 2026.pdf"
    doc.write_bytes(data)
    photo = tmp_path / "pier.jpg"
    photo_bytes = make_photo(photo)
    assert carl.run("send", alice.username, "--file", str(doc)).stdout.startswith("sent [")
    carl.run("send", alice.username, "--file", str(photo), "--caption", "the pier at noon")
    alice.open_conversation(carl.username)
    thumb = alice.page.locator(f"button[aria-label='Open image {photo.name}'] img")
    expect(thumb).to_have_attribute("src", re.compile(r"^data:image/jpeg;base64,"))
    expect(alice.page.locator(".messages .msg").last.locator(".msg-text")).to_have_text(
        "the pier at noon"
    )
    expect(file_message(alice, doc.name)).to_contain_text("5 MB · PDF")
    name, got = download(alice, doc.name, tmp_path)
    assert (name, got == data) == (doc.name, True)
    assert view_image(alice, photo.name, tmp_path) == (1600, photo_bytes)

    # the browser sends a 5 MiB file and a photo; the Python client reads them
    data2 = os.urandom(FILE_BYTES)
    sheet = tmp_path / "results.pdf"
    sheet.write_bytes(data2)
    photo2 = tmp_path / "boats.jpg"
    photo2_bytes = make_photo(photo2, size=(1200, 900))
    attach(alice, sheet, photo2, caption="results and boats")
    expect(alice.page.locator(".messages .msg.own:not(.pending)")).to_have_count(2)
    shown = {}
    for line in carl.run("history", alice.username, "--json").stdout.splitlines():
        event = json.loads(line)
        if event.get("file"):
            shown[event["file"]["name"]] = event
    assert set(shown) >= {sheet.name, photo2.name}, shown
    sent = shown[sheet.name]["file"]
    assert (sent["mime"], sent["size"]) == ("application/pdf", FILE_BYTES)
    assert sent["sha256"] == hashlib.sha256(data2).hexdigest()
    assert "key" not in sent and "prefix" not in sent
    assert shown[sheet.name]["content"].get("text") == "results and boats"
    sent_photo = shown[photo2.name]["file"]
    assert (sent_photo["mime"], sent_photo["width"], sent_photo["height"]) == (
        "image/jpeg",
        1200,
        900,
    )
    thumb_bytes = base64.b64decode(sent_photo["thumb"])
    assert thumb_bytes[:3] == b"\xff\xd8\xff" and len(thumb_bytes) <= 16384
    assert max(Image.open(io.BytesIO(thumb_bytes)).size) <= 320
    for path, expected in ((sheet, data2), (photo2, photo2_bytes)):
        target = tmp_path / "from-browser"
        target.mkdir(exist_ok=True)
        out = carl.run("download", str(shown[path.name]["id"]), "-o", str(target)).stdout
        assert out.startswith("saved "), out
        assert (target / path.name).read_bytes() == expected
    assert alice.problems == [], alice.problems
