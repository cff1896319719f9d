"""Screenshots of replies, reactions, edits and deletes in the browser app, for looking at
(not a test).

Starts a fresh server and two browser users; alice and bob chat with a reply, reactions by
both, an edited and a deleted message, a link and a Hebrew line; then bob's screen is shot
with the reaction picker open, at 1280 and 390 px wide, light and dark, to
var/screenshots/rich/chat-{light,dark}-{1280,390}.png (and a touch screen's ⋯ menu, the
composer near the cap).

Usage: .venv/bin/python scripts/rich_screenshots.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.devstack import DjangoStack  # noqa: E402
from scripts.people.browser import ChatUser  # noqa: E402

OUT = REPO / "var" / "screenshots" / "rich"
WIDTHS = {1280: {"width": 1280, "height": 800}, 390: {"width": 390, "height": 844}}


def message(user: ChatUser, text: str):
    page = user.page
    return page.locator(".messages .msg[data-seq]", has=page.locator(".msg-text", has_text=text))


def act(user: ChatUser, text: str, action: str) -> None:
    node = message(user, text)
    node.hover()
    node.get_by_role("button", name=action, exact=True).click()


def react(user: ChatUser, text: str, emoji: str) -> None:
    act(user, text, "React")
    user.page.get_by_role("button", name=f"React with {emoji}").click()


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
            bob = ChatUser(browser, stack.base_url, f"bob{tag}", viewport=WIDTHS[1280])
            alice.start()
            bob.start()
            alice.open_direct(bob.username)
            alice.send("Are we still on for the harbour walk on Saturday?")
            alice.send("The forecast says sun after 10")
            bob.open_conversation(alice.username)
            bob.expect_message("The forecast says")
            act(bob, "harbour walk", "Reply")
            bob.send("Yes! Let's meet at the lighthouse at 10:30")
            alice.expect_message("lighthouse")
            react(alice, "lighthouse", "👍")
            react(bob, "The forecast says", "❤️")
            react(alice, "The forecast says", "❤️")
            bob.send("Map: https://www.openstreetmap.org/#map=15/60.1/24.9")
            bob.send("I will bring coffee for everyone")
            alice.expect_message("bring coffee")
            act(bob, "bring coffee", "Edit")
            box = bob.page.locator("#composer-input")
            box.fill("I will bring coffee and buns for everyone")
            box.press("Enter")
            alice.send("Oops, wrong chat, ignore this")
            bob.expect_message("wrong chat")
            act(alice, "wrong chat", "Delete for everyone")
            alice.page.get_by_role("dialog").get_by_role(
                "button", name="Delete for everyone"
            ).click()
            expect(bob.page.locator(".msg[data-state=deleted]")).to_have_count(1)
            alice.send("נתראה בשבת!")
            bob.expect_message("נתראה")
            expect(bob.page.locator(".msg-edited")).to_have_count(1)
            for scheme in ("light", "dark"):
                bob.page.emulate_media(color_scheme=scheme)
                for width, viewport in WIDTHS.items():
                    bob.page.set_viewport_size(viewport)
                    bob.page.locator(".messages").evaluate(
                        "el => { el.scrollTop = el.scrollHeight; }"
                    )
                    act(bob, "lighthouse", "React")
                    expect(
                        bob.page.get_by_role("dialog", name="React to the message")
                    ).to_be_visible()
                    bob.page.screenshot(path=str(OUT / f"chat-{scheme}-{width}.png"))
                    bob.page.keyboard.press("Escape")
            bob.page.emulate_media(color_scheme="light")
            # a phone: no hover, so each message has a ⋯ button (a long press works too)
            cdp = bob.context.new_cdp_session(bob.page)
            cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
            bob.page.set_viewport_size(WIDTHS[390])
            more = message(bob, "bring coffee").get_by_role("button", name="Message actions")
            more.click()
            bob.page.screenshot(path=str(OUT / "chat-touch-390.png"))
            cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": False})
            bob.page.set_viewport_size(WIDTHS[1280])
            act(bob, "harbour walk", "Reply")
            box.fill("a" * 15800)
            bob.page.screenshot(path=str(OUT / "composer-limit-1280.png"))
            browser.close()
    finally:
        stack.stop()
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
