"""Rough edges of issue 14 found by trying the app, in one browser with as few people as
possible (the shared stack, one person with keys, one without): Log out and wording
before the chat (bug 8)."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect

from tests.browser.chat_helpers import PASSWORD, ChatUser

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
