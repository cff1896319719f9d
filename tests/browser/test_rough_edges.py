"""Rough edges of issue 14 found by trying the app, in one browser with as few people as
possible (the shared stack, one person with keys, one without): Log out and wording
before the chat (bug 8), the reset screen (bug 10), chat links that lead nowhere
(bug 13), losing the network (bugs 6 and 7), the people search's hint (bug 12) and the
new-group dialog's error (bug 4)."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect

from scripts.people.browser import PASSWORD, ChatUser

pytestmark = pytest.mark.browser

NAMES = {n: f"{n}{secrets.token_hex(3)}" for n in ("alice", "bob")}


@pytest.fixture(scope="module")
def alice(browser, shared_stack):
    """A person with a set-up browser, shared by the tests of this file."""
    user = ChatUser(browser, shared_stack.base_url, NAMES["alice"]).start()
    yield user
    user.close()


@pytest.fixture
def visitor(browser, shared_stack):
    """A browser with nobody logged in."""
    context = browser.new_context(base_url=shared_stack.base_url)
    yield context.new_page()
    context.close()


def test_setup_screen_agrees_with_itself_and_can_log_out(visitor):
    page = visitor
    page.goto("/register/")
    page.fill("#id_username", NAMES["bob"])
    page.fill("#id_password", PASSWORD)
    page.fill("#id_password_again", PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Set up this browser")).to_be_visible()
    expect(page.get_by_role("button", name="Set up this browser")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login/$"))


def test_unlock_screen_can_log_out(alice):
    page = alice.page
    page.reload()
    expect(page.locator("#unlock-passphrase")).to_be_visible()
    expect(page.locator(".signed-in")).to_contain_text(alice.username)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    alice.unlock().ready()


def test_reset_screen_keeps_the_device_name_and_looks_destructive(browser, shared_stack, alice):
    other = ChatUser(browser, shared_stack.base_url, alice.username).login()
    try:
        page = other.page
        page.get_by_role("button", name="Link this browser").click()
        page.fill("#device-name", "Work laptop")
        page.get_by_role("button", name="Back").click()
        page.get_by_role("button", name="Set up without another device").click()
        expect(page.locator("#device-name")).to_have_value("Work laptop")
        button = page.get_by_role("button", name="Reset and set up this browser")
        expect(button).to_have_class(re.compile(r"\bdanger\b"))
        danger = page.evaluate(
            "getComputedStyle(document.documentElement).getPropertyValue('--danger').trim()"
        )
        expect(button).to_have_css("background-color", hex_to_rgb(danger))
    finally:
        other.close()


def test_chat_links_that_lead_nowhere_say_not_found(alice):
    page = alice.page
    for link in ("/?c=999999", "/?c=abc"):
        page.evaluate(
            "url => { history.pushState(null, '', url); dispatchEvent(new PopStateEvent('popstate')); }",
            link,
        )
        expect(page.get_by_role("heading", name="Conversation not found")).to_be_visible()
        expect(page).to_have_title(re.compile("Conversation not found"))
    page.get_by_role("link", name="Back to conversations").click()
    expect(page.get_by_role("heading", name="Conversation not found")).to_have_count(0)


def test_losing_the_network_is_noticed_on_one_line(alice):
    page = alice.page
    alice.open_direct(NAMES["bob"])
    status = page.locator("#connection-state")
    expect(status).to_have_text("Connected")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 800})
        if width == 390:
            page.get_by_role("button", name="Back to conversations").click()
        online = box_heights(page)
        alice.context.set_offline(True)
        # the browser says the network is gone (navigator.onLine, the offline event)
        expect(status).to_have_attribute("data-state", "offline", timeout=2_000)
        expect(status).to_have_text("Offline · no network")
        assert box_heights(page) == online, "the status line keeps the sidebar's layout"
        text = page.locator("#connection-state .connection-text")
        assert text.evaluate("e => e.scrollWidth <= e.clientWidth"), "the status is shown whole"
        if width == 1280:
            # the header agrees: it does not show the other person as online
            expect(page.locator(".pane-sub")).to_have_text("You are offline")
        alice.context.set_offline(False)
        expect(status).to_have_text("Connected")
    page.set_viewport_size({"width": 1200, "height": 800})


def test_people_search_explains_the_three_letter_minimum(alice):
    page = alice.page
    page.fill("#conv-search", NAMES["bob"][:2])
    expect(page.locator(".people-results")).to_contain_text("Type 3 or more letters")
    page.fill("#conv-search", NAMES["bob"])
    expect(page.get_by_role("button", name=f"Chat with {NAMES['bob']}")).to_be_visible()
    page.fill("#conv-search", "")


def test_new_group_error_goes_once_a_member_is_added(alice):
    page = alice.page
    page.get_by_role("button", name="New group").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("button", name="Create group").click()
    expect(dialog.get_by_role("alert")).to_have_text("Add at least one member.")
    page.fill("#group-search", NAMES["bob"])
    dialog.locator(".pick", has_text=NAMES["bob"]).click()
    expect(dialog.locator(".chip", has_text=NAMES["bob"])).to_be_visible()
    expect(dialog.get_by_text("Add at least one member.")).to_be_hidden()
    dialog.get_by_role("button", name="Cancel").click()


def box_heights(page) -> list[float]:
    """The heights of the sidebar's head and of the connection line."""
    return page.evaluate(
        "['.sidebar-head', '#connection-state'].map((s) => document.querySelector(s).getBoundingClientRect().height)"
    )


def hex_to_rgb(value: str) -> str:
    r, g, b = (int(value.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgb({r}, {g}, {b})"
