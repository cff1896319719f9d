"""Screenshots of attachments in the browser app, for looking at (not a test).

Starts a fresh server, two browser users; alice sends bob a file and a photo, a slow
upload is caught in progress, and a blob changed in storage is refused. Writes, at
1280 px and 390 px wide, var/screenshots/att-{image,staged,file,upload,refused,viewer}-{1280,390}.png.

Usage: .venv/bin/python scripts/attachment_screenshots.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.devstack import DjangoStack  # noqa: E402
from scripts.people.attachments import (  # noqa: E402
    attach,
    swap_first_chunks,
    uploaded_blob_id,
)
from scripts.people.browser import ChatUser  # noqa: E402
from scripts.people.photos import make_photo  # noqa: E402

OUT = REPO / "var" / "screenshots"
WIDTHS = {1280: {"width": 1280, "height": 800}, 390: {"width": 390, "height": 844}}


def shoot(user: ChatUser, name: str, locator=None) -> None:
    for width, viewport in WIDTHS.items():
        user.page.set_viewport_size(viewport)
        if locator is not None:
            locator.scroll_into_view_if_needed()
        user.page.screenshot(path=str(OUT / f"att-{name}-{width}.png"))
    user.page.set_viewport_size(WIDTHS[1280])


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="att-shots-"))
    stack = DjangoStack(1).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
            )
            tag = os.urandom(2).hex()
            alice = ChatUser(browser, stack.base_url, f"alice{tag}", viewport=WIDTHS[1280])
            bob = ChatUser(browser, stack.base_url, f"bob{tag}", viewport=WIDTHS[1280])
            alice.start()
            bob.start()
            alice.open_direct(bob.username)
            alice.send("Here are the minutes and a photo from Saturday")
            bob.open_conversation(alice.username)
            bob.expect_message("Here are the minutes")

            photo = tmp / "Harbour at dusk.jpg"
            make_photo(photo)
            doc = tmp / "Minutes of the annual general meeting 2026 (final, signed).pdf"
            doc.write_bytes(os.urandom(2_400_000))
            attach(alice, photo, caption="The harbour on Saturday evening")
            expect(bob.page.locator(".att-img")).to_be_visible(timeout=30_000)
            alice.page.set_input_files("#attach-input", [str(doc)])
            alice.page.locator("#composer-input").fill("Minutes attached")
            expect(alice.page.locator(".attach-chip")).to_be_visible()
            shoot(alice, "staged")
            alice.page.locator("#composer-input").fill("")
            alice.page.locator("#composer-input").press("Enter")
            card = bob.page.locator(".att-file")
            expect(card).to_be_visible(timeout=30_000)
            shoot(bob, "image", bob.page.locator(".att-img"))
            bob.send("Thanks! Downloading now")
            with bob.page.expect_download():
                card.get_by_role("button").click()
            expect(card).to_contain_text("saved")
            shoot(bob, "file", card)

            bob.page.get_by_role("button", name=f"Open image {photo.name}").click()
            expect(bob.page.locator("dialog.viewer img[data-full=true]")).to_be_visible()
            shoot(bob, "viewer")
            bob.page.locator("dialog.viewer").get_by_role("button", name="Close").click()

            # an upload held at a crawl: 200 KB/s
            cdp = alice.context.new_cdp_session(alice.page)
            cdp.send("Network.enable")
            cdp.send(
                "Network.emulateNetworkConditions",
                {
                    "offline": False,
                    "latency": 0,
                    "downloadThroughput": -1,
                    "uploadThroughput": 200_000,
                },
            )
            big = tmp / "site survey 2026.zip"
            big.write_bytes(os.urandom(8_000_000))
            attach(alice, big, caption="The survey archive")
            upload = alice.page.locator(".msg.upload[data-phase=uploading]")
            expect(upload).to_be_visible(timeout=30_000)
            alice.page.wait_for_function(
                "() => { const p = document.querySelector('.msg.upload progress'); return p && p.value / p.max > 0.1; }"
            )
            shoot(alice, "upload", upload)
            upload.get_by_role("button", name="Cancel").click()
            expect(upload).to_have_count(0)
            cdp.send(
                "Network.emulateNetworkConditions",
                {
                    "offline": False,
                    "latency": 0,
                    "downloadThroughput": -1,
                    "uploadThroughput": -1,
                },
            )

            # a file whose blob is changed on the server: refused
            ledger = tmp / "ledger.csv"
            ledger.write_bytes(os.urandom(300_000))
            swap_first_chunks(stack, uploaded_blob_id(alice, lambda: attach(alice, ledger)))
            last = bob.page.locator(".messages .msg").last
            expect(last.locator(".att-name")).to_have_text(ledger.name, timeout=30_000)
            last.get_by_role("button", name=f"Download {ledger.name}").click()
            expect(last.locator(".att-refused-text")).to_be_visible()
            shoot(bob, "refused", last)
            print("problems:", alice.problems, bob.problems)
            browser.close()
    finally:
        stack.stop()
    for path in sorted(OUT.glob("att-*.png")):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
