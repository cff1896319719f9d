"""Message requests in the browser (PROTOCOL §6): a stranger's first message arrives as a
request with a banner; until it is accepted neither side sees the other online."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_a_request_banner_and_accept_starts_presence(people):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    alice.send("hello, we met at the conference")
    item = bob.page.locator(".conv-item", has_text=alice.username)
    expect(item).to_contain_text("Message request")
    bob.open_conversation(alice.username)
    banner = bob.page.locator(".request-banner")
    expect(banner).to_contain_text(f"{alice.username} wants to message you.")
    bob.expect_message("hello, we met at the conference")
    # both are online, but neither is told while it is a request
    expect(alice.page.locator(".pane-sub")).to_have_text("Offline")
    expect(bob.page.locator(".pane-sub")).to_have_text("Offline")

    banner.get_by_role("button", name="Accept").click()
    expect(banner).to_have_count(0)
    expect(alice.page.locator(".pane-sub")).to_have_text("Online")
    expect(bob.page.locator(".pane-sub")).to_have_text("Online")
    expect(item).not_to_contain_text("Message request")
