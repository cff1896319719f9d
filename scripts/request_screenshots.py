"""Screenshots of the message-request banner, for looking at (not a test).

Starts a fresh server and two browser users; alice writes to bob, who never wrote to
her: bob's view of the request. Writes var/screenshots/requests/
request-{banner,blocked}-{1280,390}-{light,dark}.png, and prints what axe-core finds
(serious and critical, light and dark) on both.

Usage: .venv/bin/python scripts/request_screenshots.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.devstack import DjangoStack  # noqa: E402
from scripts.people.axe import axe_problems  # noqa: E402
from scripts.people.browser import ChatUser  # noqa: E402

OUT = REPO / "var" / "screenshots" / "requests"
WIDTHS = {1280: {"width": 1280, "height": 800}, 390: {"width": 390, "height": 844}}


def shoot(user: ChatUser, name: str) -> None:
    for scheme in ("light", "dark"):
        user.page.emulate_media(color_scheme=scheme)
        for width, viewport in WIDTHS.items():
            user.page.set_viewport_size(viewport)
            user.page.screenshot(path=str(OUT / f"request-{name}-{width}-{scheme}.png"))
    user.page.set_viewport_size(WIDTHS[1280])
    user.page.emulate_media(color_scheme="light")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    stack = DjangoStack(1).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
            )
            tag = os.urandom(2).hex()
            alice = ChatUser(browser, stack.base_url, f"alice{tag}", viewport=WIDTHS[1280])
            bob = ChatUser(
                browser, stack.base_url, f"bob{tag}", viewport=WIDTHS[1280], bypass_csp=True
            )
            alice.start()
            bob.start()
            alice.open_direct(bob.username)
            alice.send("Hi Bob! We met at the conference on Saturday, I'd love to talk more.")
            bob.open_conversation(alice.username)
            bob.expect_message("We met at the conference")
            banner = bob.page.locator(".request-banner")
            expect(banner).to_be_visible()
            shoot(bob, "banner")
            print("axe (banner):", axe_problems(bob.page) or "no serious or critical violation")
            banner.get_by_role("button", name="Block").click()
            bob.page.locator("dialog").get_by_role("button", name="Block").click()
            expect(bob.page.locator(".request-banner[data-kind=blocked]")).to_be_visible()
            shoot(bob, "blocked")
            print("axe (blocked):", axe_problems(bob.page) or "no serious or critical violation")
            print("problems:", alice.problems, bob.problems)
            browser.close()
    finally:
        stack.stop()
    for path in sorted(OUT.glob("request-*.png")):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
