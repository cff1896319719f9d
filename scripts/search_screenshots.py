"""Screenshots of local search (issue 14) at 1280 and 390 px, light and dark:
results as you type in the sidebar, and a result opened (the message outlined).

Usage: PYTHONPATH=. .venv/bin/python scripts/search_screenshots.py  (writes
var/screenshots/search/*.png; starts its own daphne)."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OUT = REPO / "var" / "screenshots" / "search"


def main() -> int:
    from scripts.devstack import DjangoStack
    from scripts.people.browser import ChatUser
    from scripts.people.seeding import seed_direct

    OUT.mkdir(parents=True, exist_ok=True)
    stack = DjangoStack(1, env={"REST_SEND_RATE": "100000/m"}).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--no-sandbox"], headless=True
            )
            tag = secrets.token_hex(2)
            alice = ChatUser(
                browser, stack.base_url, f"alice{tag}", viewport={"width": 1280, "height": 800}
            )
            bob = ChatUser(browser, stack.base_url, f"bob{tag}")
            alice.start()
            bob.start()
            alice.open_direct(bob.username)
            bob.open_conversation(alice.username)
            for text in (
                "Lunch on Friday? The new café by the station does a great soup",
                "Sure! Is 12:30 ok for lunch?",
                "Perfect, see you at the café 🙂",
            ):
                bob.send(text)
            alice.expect_message("Perfect, see you at the café")
            alice.send("Can we move lunch to Thursday instead?")
            seed_direct(
                stack.base_url,
                alice.username,
                [
                    "Project review moved to Monday",
                    "Lunchtime talk on encryption: room 4, bring questions",
                    "Déjà vu: the budget spreadsheet again",
                ]
                + [f"status update {i}" for i in range(1, 60)],
                name=f"carol{tag}",
            )
            page = alice.page
            expect(page.locator(".conv-item", has_text=f"carol{tag}")).to_be_visible()
            page.fill("#conv-search", "lunch")
            page.locator(".msg-result").first.wait_for()
            # the seeded conversation came in while the page was open: indexed as it arrived
            expect(page.locator(".msg-result", has_text="Lunchtime talk")).to_be_visible()
            for scheme in ("light", "dark"):
                page.emulate_media(color_scheme=scheme)
                for width, height in ((1280, 800), (390, 844)):
                    page.set_viewport_size({"width": width, "height": height})
                    page.evaluate("document.activeElement.blur()")
                    if (
                        width == 390
                        and page.locator(".chat-layout[data-view=conversation]").count()
                    ):
                        page.get_by_role("button", name="Back to conversations").click()
                    page.fill("#conv-search", "")
                    page.fill("#conv-search", "lunch")
                    page.locator(".msg-result").first.wait_for()
                    page.screenshot(path=str(OUT / f"search-results-{width}-{scheme}.png"))
                    page.locator(".msg-result", has_text="Lunchtime talk").click()
                    found = page.locator(".messages .msg.msg-found")
                    expect(found).to_contain_text("Lunchtime talk")
                    page.screenshot(path=str(OUT / f"search-jump-{width}-{scheme}.png"))
                    page.wait_for_function("() => !document.querySelector('.msg-found')")
            page.set_viewport_size({"width": 1280, "height": 800})
            page.emulate_media(color_scheme="light")
            page.fill("#conv-search", "zqx")
            page.locator(".msg-search .empty-list").wait_for()
            page.locator(".msg-search").get_by_role("button", name="Rebuild index").click()
            page.locator(".rebuild-progress").wait_for()
            page.screenshot(path=str(OUT / "search-rebuild-1280-light.png"))
            expect(page.locator(".search-foot")).to_contain_text("Index rebuilt.", timeout=60_000)
            if alice.problems:
                raise SystemExit(f"page problems: {alice.problems}")
            browser.close()
    finally:
        stack.stop()
    print(f"written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
