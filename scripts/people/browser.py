"""Drive the browser app like a person: register, set up a device, chat."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

PASSWORD = "Login-pass-Quartz-91!"
PASSPHRASE = "violet harbour kettle mountain"
SETUP_TIMEOUT = 60_000
LIVE_TIMEOUT = 15_000


class ChatUser:
    """One person with one browser context (its own IndexedDB, cookies and page)."""

    def __init__(
        self, browser: Browser, base_url: str, username: str, *, viewport=None, **context_options
    ) -> None:
        self.browser = browser
        self.base_url = base_url
        self.username = username
        self.context = browser.new_context(
            base_url=base_url,
            viewport=viewport or {"width": 1200, "height": 800},
            **context_options,
        )
        self.problems: list[str] = []
        self.page = self.new_page()

    def new_page(self) -> Page:
        page = self.context.new_page()
        page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))
        page.on(
            "console",
            lambda msg: (
                self.problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" or "Content Security Policy" in msg.text
                else None
            ),
        )
        page.on(
            "dialog",
            lambda dialog: (self.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()),
        )
        return page

    def close(self) -> None:
        self.context.close()

    # --- accounts and device -------------------------------------------------------------

    def register(self) -> ChatUser:
        page = self.page
        page.goto("/register/")
        page.fill("#id_username", self.username)
        page.fill("#id_password", PASSWORD)
        page.fill("#id_password_again", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/$"))
        return self

    def login(self) -> ChatUser:
        page = self.page
        page.goto("/login/")
        page.fill("#id_username", self.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/$"))
        return self

    def setup_device(self, passphrase: str = PASSPHRASE, name: str | None = None) -> ChatUser:
        page = self.page
        expect(page.get_by_role("heading", name="Set up this browser")).to_be_visible()
        if name:
            page.fill("#device-name", name)
        page.get_by_label("Passphrase", exact=True).fill(passphrase)
        page.get_by_label("Passphrase (again)").fill(passphrase)
        page.check("#understand")
        page.get_by_role("button", name="Set up this browser").click()
        page.wait_for_selector("body[data-ready=true]", timeout=SETUP_TIMEOUT)
        return self

    def unlock(self, passphrase: str = PASSPHRASE) -> ChatUser:
        page = self.page
        page.fill("#unlock-passphrase", passphrase)
        page.get_by_role("button", name="Unlock").click()
        return self

    def start(self, passphrase: str = PASSPHRASE) -> ChatUser:
        return self.register().setup_device(passphrase)

    def ready(self, timeout: int = SETUP_TIMEOUT) -> ChatUser:
        self.page.wait_for_selector("body[data-ready=true]", timeout=timeout)
        return self

    # --- linking (PROTOCOL §7.2) ------------------------------------------------------------

    def request_link(self, passphrase: str = PASSPHRASE, name: str | None = None) -> str:
        """On the "Add this browser" screen of a logged-in user: Link this browser, name
        and passphrase, then wait for the link code; returns its 20 characters."""
        page = self.page
        expect(page.get_by_role("heading", name="Add this browser to your account")).to_be_visible()
        page.get_by_role("button", name="Link this browser").click()
        if name:
            page.fill("#device-name", name)
        page.get_by_label("Passphrase", exact=True).fill(passphrase)
        page.get_by_label("Passphrase (again)").fill(passphrase)
        page.get_by_role("button", name="Show link code").click()
        code = page.locator("#link-code")
        expect(code).to_be_visible(timeout=SETUP_TIMEOUT)
        return shown_code(code)

    def approval_code(self, timeout: int = LIVE_TIMEOUT) -> str:
        """Wait for the approval dialog of a link request; returns the code it shows."""
        code = self.page.locator("dialog[open] #approve-code")
        expect(code).to_be_visible(timeout=timeout)
        return shown_code(code)

    def approve_link(self) -> None:
        self.page.locator("dialog[open]").get_by_role("button", name="Approve").click()
        expect(self.page.locator("dialog[open]")).to_have_count(0, timeout=LIVE_TIMEOUT)

    def expect_transfer_done(self, timeout: int = 60_000) -> None:
        expect(self.page.locator(".transfer-card[data-transfer-state=done]")).to_be_visible(
            timeout=timeout
        )

    # --- history -----------------------------------------------------------------------------

    def load_history(self, at_least: int, timeout: int = 60_000) -> None:
        """Scroll the open conversation up until `at_least` messages are shown or the
        start of the conversation is reached."""
        page = self.page
        page.wait_for_function(
            """(n) => {
              const log = document.querySelector('.messages');
              if (!log) return false;
              const count = log.querySelectorAll('.msg').length;
              const start = [...log.querySelectorAll('.history-edge')].some((e) => e.textContent.startsWith('Start of'));
              if (count >= n || start) return true;
              log.scrollTop = 0;
              log.dispatchEvent(new Event('scroll'));
              return false;
            }""",
            arg=at_least,
            polling=250,
            timeout=timeout,
        )

    def shown_messages(self) -> list[tuple[str, str]]:
        """(state, text) of every message in the open conversation, in order."""
        return self.page.locator(".messages .msg").evaluate_all(
            "els => els.map((el) => [el.dataset.state, el.querySelector('.msg-text')?.textContent ?? ''])"
        )

    def export_key_file(self, path: Path) -> Path:
        """Save this browser's key file (Security page, "Export key file") to ``path``."""
        go_security(self)
        with self.page.expect_download() as info:
            self.page.get_by_role("button", name="Export key file").click()
        info.value.save_as(path)
        return path

    def import_key_file(self, path: Path, passphrase: str = PASSPHRASE) -> ChatUser:
        """On the setup screen of a logged-in user: import a key file and wait until ready."""
        page = self.page
        page.get_by_role("button", name="Import a key file").click()
        page.set_input_files("#key-file", str(path))
        page.fill("#import-passphrase", passphrase)
        page.get_by_role("button", name="Import and unlock").click()
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        return self

    # --- chatting --------------------------------------------------------------------------

    def open_direct(self, other: str) -> None:
        page = self.page
        page.fill("#conv-search", other)
        page.get_by_role("button", name=f"Chat with {other}", exact=True).click()
        expect(page.locator("#pane-title")).to_have_text(other)

    def open_conversation(self, title: str) -> None:
        self.page.locator(".conv-item", has_text=title).first.click()
        expect(self.page.locator("#pane-title")).to_have_text(title)

    def send(self, text: str) -> None:
        box = self.page.locator("#composer-input")
        box.fill(text)
        box.press("Enter")

    def messages(self):
        return self.page.locator(".messages .msg .msg-text")

    def expect_message(self, text: str, timeout: int = LIVE_TIMEOUT) -> None:
        expect(self.page.locator(".messages .msg .msg-text", has_text=text).first).to_be_visible(
            timeout=timeout
        )
        expect(self.page.locator(".messages .msg .msg-text").filter(has_text=text)).to_have_count(1)

    def expect_sent(self, text: str) -> None:
        """The own message has left the outbox (acknowledged: sent or read)."""
        item = self.page.locator(".msg.own", has_text=text)
        expect(item).to_have_attribute(
            "data-delivery", re.compile("sent|read"), timeout=LIVE_TIMEOUT
        )


def shown_code(locator) -> str:
    """A link code as shown (groups of four), checked against its data attribute."""
    text = locator.inner_text().replace(" ", "").replace("\n", "").lower()
    assert text == locator.get_attribute("data-code"), text
    assert len(text) == 20, text
    return text


def go_safety(user: ChatUser, other: str) -> str:
    """Open the safety number page of `other`; returns the 60 digits shown."""
    go_security(user)
    user.page.get_by_role("link", name=f"Safety number with {other}").click()
    number = user.page.locator("#safety-number")
    expect(number).to_be_visible()
    digits = number.inner_text().replace(" ", "").replace("\n", "")
    assert len(digits) == 60 and digits.isdigit(), digits
    assert digits == number.get_attribute("data-number")
    return digits


def go_security(user: ChatUser) -> None:
    user.page.locator("#security-link").click()
    expect(user.page.get_by_role("heading", name="Security and devices")).to_be_visible()
