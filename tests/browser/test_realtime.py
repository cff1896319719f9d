"""Reconnect with sync and outbox over a dropped connection, history paging (a history
written from Python, v2), desktop notifications."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from scripts.people.seeding import seed_direct

pytestmark = pytest.mark.browser

WS_URL = re.compile(r".*/ws/chat/.*")


class Network:
    """Routes a context's chat WebSockets through Playwright so a test can cut them."""

    def __init__(self, context) -> None:
        self.offline = False
        self.routes = []
        context.route_web_socket(WS_URL, self.handle)

    def handle(self, ws) -> None:
        if self.offline:
            ws.close(code=4000, reason="offline")
            return
        ws.connect_to_server()
        self.routes.append(ws)

    def cut(self) -> None:
        self.offline = True
        for ws in self.routes:
            ws.close(code=4000, reason="network down")
        self.routes.clear()

    def restore(self) -> None:
        self.offline = False


def test_dropped_connection_syncs_and_flushes_the_outbox(people):
    alice = people("alice")
    network = Network(alice.context)
    alice.start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    alice.send("before the cut")
    bob.open_conversation(alice.username)
    bob.expect_message("before the cut")

    network.cut()
    expect(alice.page.locator("#connection-state")).to_contain_text("Offline")
    for i in range(1, 4):
        bob.send(f"missed {i}")
    bob.expect_sent("missed 3")
    alice.send("queued while offline")
    queued = alice.page.locator(".msg.own", has_text="queued while offline")
    expect(queued).to_have_attribute("data-delivery", "pending")
    expect(alice.messages().filter(has_text="missed")).to_have_count(0)

    network.restore()
    expect(alice.page.locator("#connection-state")).to_contain_text("Connected", timeout=40_000)
    for i in range(1, 4):
        alice.expect_message(f"missed {i}")
    alice.expect_sent("queued while offline")
    bob.expect_message("queued while offline")
    texts = alice.messages().all_inner_texts()
    order = [t for t in texts if t.startswith(("before", "missed", "queued"))]
    assert order == ["before the cut", "missed 1", "missed 2", "missed 3", "queued while offline"]


def test_history_pages_load_when_scrolling_up(people, stack):
    alice = people("alice").start()
    bob = seed_direct(stack.base_url, alice.username, [f"old {i}" for i in range(1, 121)])
    alice.page.reload()
    alice.unlock()
    alice.page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    alice.open_conversation(bob["username"])
    messages = alice.page.locator(".messages .msg")
    expect(messages).to_have_count(50)
    expect(messages.last).to_contain_text("old 120")
    for shown in (100, 120):
        alice.page.locator(".messages").evaluate("el => { el.scrollTop = 0; }")
        expect(messages).to_have_count(shown)
    expect(alice.page.locator(".history-edge")).to_contain_text("Start of the conversation")
    texts = alice.messages().all_inner_texts()
    assert texts == [f"old {i}" for i in range(1, 121)]
    # judged in order whichever way the pages came: nothing flagged
    expect(alice.page.locator(".messages .msg[data-state=ok]")).to_have_count(120)


RECORD_NOTIFICATIONS = """() => {
  window.__shown = [];
  const Real = window.Notification;
  class Recorder extends Real {
    constructor(title, options) { super(title, options); window.__shown.push({ title, body: options?.body ?? '' }); }
  }
  Object.defineProperty(Recorder, 'permission', { get: () => Real.permission });
  Recorder.requestPermission = (...a) => Real.requestPermission(...a);
  window.Notification = Recorder;
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
}"""


def test_desktop_notification_names_the_sender_only(people, stack):
    alice = people("alice")
    alice.context.grant_permissions(["notifications"], origin=stack.base_url)
    alice.start()
    bob = people("bob").start()
    bob.open_direct(alice.username)
    bob.send("first contact")
    # the first message is in (counted unread) before notifications are recorded
    expect(alice.page.locator(".conv-item", has_text=bob.username).locator(".badge")).to_have_text(
        "1"
    )
    alice.page.get_by_role("button", name="Desktop notifications off (turn on)").click()
    expect(
        alice.page.get_by_role("button", name="Desktop notifications on (turn off)")
    ).to_be_visible()
    alice.page.evaluate(RECORD_NOTIFICATIONS)
    bob.send("the secret text")
    alice.page.wait_for_function("() => window.__shown.length > 0")
    shown = alice.page.evaluate("window.__shown")
    assert shown == [{"title": f"New message from {bob.username}", "body": ""}]
    expect(alice.page.locator(".conv-item", has_text=bob.username).locator(".badge")).to_have_text(
        "2"
    )
