"""The browser app end to end: Debian's Chromium against a live daphne."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import expect

from scripts.people.browser import PASSPHRASE, ChatUser

pytestmark = pytest.mark.browser

WS_URL = re.compile(r".*/ws/chat/.*")
XSS_IMG = "<img src=x onerror=\"document.title='pwned'\">"
XSS_SCRIPT = "<script>document.title='pwned'</script>"


DUMP_INDEXEDDB = """async () => {
  const db = await new Promise((ok, no) => { const r = indexedDB.open('e2ee-chat'); r.onsuccess = () => ok(r.result); r.onerror = no; });
  const out = [];
  for (const name of db.objectStoreNames) {
    const all = await new Promise((ok) => { const r = db.transaction(name).objectStore(name).getAll(); r.onsuccess = () => ok(r.result); });
    out.push(JSON.stringify(all));
  }
  return out.join('\\n');
}"""


def sqlite_path(stack) -> Path:
    return Path(stack.database_url.removeprefix("sqlite:///"))


def database_text(stack) -> str:
    """Every value of every table of the stack's SQLite database, as one string."""
    with sqlite3.connect(sqlite_path(stack)) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        chunks = []
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - names from sqlite_master
                for value in row:
                    if isinstance(value, bytes):
                        chunks.append(value.decode("latin-1"))
                    elif value is not None:
                        chunks.append(str(value))
    return "\n".join(chunks)


def no_problems(*users: ChatUser) -> None:
    for user in users:
        assert user.problems == [], f"{user.username}: {user.problems}"


def test_direct_chat_both_ways_history_and_privacy(people, stack):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    alice.send("Hello Bob, this is secret one")
    alice.expect_message("Hello Bob, this is secret one")
    alice.expect_sent("Hello Bob, this is secret one")

    # bob sees the conversation appear live with an unread count, then the message
    expect(bob.page.locator(".conv-item", has_text=alice.username).locator(".badge")).to_have_text(
        "1"
    )
    bob.open_conversation(alice.username)
    bob.expect_message("Hello Bob, this is secret one")
    box = bob.page.locator("#composer-input")
    box.type("Hi Alice, secret two")
    box.press("Shift+Enter")
    box.type("with a second line")
    box.press("Enter")
    expect(box).to_have_value("")
    alice.expect_message("secret two")
    assert "with a second line" in alice.messages().last.inner_text()

    # markup is text, never HTML
    alice.send(XSS_IMG)
    bob.send(XSS_SCRIPT)
    for user in (alice, bob):
        user.expect_message(XSS_IMG)
        user.expect_message(XSS_SCRIPT)
        assert user.page.locator(".messages img, .messages script").count() == 0
        assert user.page.title() != "pwned"

    # read receipts reach the sender
    expect(alice.page.locator(".msg.own", has_text="secret one")).to_have_attribute(
        "data-delivery", "read", timeout=15_000
    )

    # reload + unlock shows the history, decrypted and verified
    alice.page.reload()
    expect(alice.page.get_by_role("heading", name="Unlock this device")).to_be_visible()
    alice.unlock()
    alice.page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    alice.open_conversation(bob.username)
    for text in ("secret one", "secret two", XSS_IMG, XSS_SCRIPT):
        alice.expect_message(text)
    expect(alice.page.locator(".bubble-failed")).to_have_count(0)

    # a third user can neither see nor fetch it
    carol = people("carol").start()
    expect(carol.page.locator(".conv-item")).to_have_count(0)
    conversation_id = int(re.search(r"c=(\d+)", alice.page.url).group(1))
    response = carol.page.request.get(f"/api/conversations/{conversation_id}/messages/")
    assert response.status == 403
    assert "secret" not in response.text()

    # the server stored no plaintext of any message
    stored = database_text(stack)
    for text in ("secret one", "secret two", "second line", "pwned", "onerror", "<script>"):
        assert text not in stored
    # nor did the browsers keep any in localStorage or IndexedDB (only ciphertext, kids, names)
    for user in (alice, bob):
        assert user.page.evaluate("localStorage.length + sessionStorage.length") == 0
        browser_state = user.page.evaluate(DUMP_INDEXEDDB)
        for text in ("secret one", "secret two", "pwned"):
            assert text not in browser_state
    no_problems(alice, bob, carol)


def test_wrong_passphrase_is_refused(people):
    alice = people("alice").start()
    alice.page.reload()
    alice.unlock("not the right passphrase")
    expect(alice.page.get_by_role("alert")).to_contain_text("Wrong passphrase")
    expect(alice.page.get_by_role("heading", name="Unlock this device")).to_be_visible()
    alice.unlock(PASSPHRASE)
    alice.page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    no_problems(alice)


@pytest.mark.own_stack
def test_outbox_survives_a_server_restart(people, stack):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    alice.send("first")
    bob.open_conversation(alice.username)
    bob.expect_message("first")

    stack.kill(0)
    expect(alice.page.locator("#connection-state")).to_contain_text("Offline", timeout=15_000)
    alice.send("sent while offline")
    expect(alice.page.locator(".msg.own.pending", has_text="sent while offline")).to_be_visible()
    stack.restart(0)
    expect(alice.page.locator("#connection-state")).to_contain_text("Connected", timeout=40_000)
    alice.expect_sent("sent while offline")
    bob.expect_message("sent while offline", timeout=40_000)
    alice.send("after reconnect")
    bob.expect_message("after reconnect")
    # exactly once on both sides
    alice.expect_message("sent while offline")
    with sqlite3.connect(sqlite_path(stack)) as db:
        assert db.execute("SELECT COUNT(*) FROM messaging_message").fetchone()[0] == 3


class KeySwap:
    """Routes a context's chat WebSocket through Playwright and, once armed, rewrites the
    next `send` frame as a server could: every other device's wrapped key is replaced by
    the sender's own (`keys` is not signed; the key commitment and unwrap must catch it)."""

    def __init__(self, context, own_kid: str) -> None:
        self.own_kid = own_kid
        self.armed = False
        context.route_web_socket(WS_URL, self.handle)

    def handle(self, ws) -> None:
        server = ws.connect_to_server()

        def from_page(message):
            if self.armed and isinstance(message, str):
                frame = json.loads(message)
                if frame.get("type") == "send":
                    keys = frame["envelope"]["keys"]
                    for kid in keys:
                        keys[kid] = keys[self.own_kid]
                    self.armed = False
                    message = json.dumps(frame)
            server.send(message)

        ws.on_message(from_page)


def test_message_that_fails_to_open_is_marked_not_shown(people):
    alice = people("alice").start()
    bob = people("bob")
    swap = KeySwap(bob.context, own_kid="")
    bob.start()
    devices = bob.page.request.get(f"/api/users/{bob.username}/devices/").json()["devices"]
    swap.own_kid = devices[0]["enc_kid"]
    alice.open_direct(bob.username)
    alice.send("a fine message")
    bob.open_conversation(alice.username)
    bob.expect_message("a fine message")
    swap.armed = True
    bob.send("tampered secret")
    bob.expect_sent("tampered secret")
    failed = alice.page.locator(".msg[data-state=failed]")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("could not be decrypted or verified")
    expect(alice.page.locator(".messages")).not_to_contain_text("tampered secret")
    no_problems(alice, bob)


def test_revoked_device_is_disconnected_and_must_be_set_up_again(people):
    bob = people("bob").start()
    bob2 = people("bob")
    bob2.login()
    code = bob2.request_link(name="Old laptop")
    assert bob.approval_code() == code
    bob.approve_link()
    bob2.ready()
    bob.page.locator("#security-link").click()
    bob.page.get_by_role("button", name="Revoke Old laptop").click()
    bob.page.get_by_role("dialog", name="Revoke device").get_by_role(
        "button", name="Revoke"
    ).click()
    expect(bob.page.locator(".device.revoked")).to_have_count(1)
    expect(bob2.page.get_by_role("heading", name="Disconnected")).to_be_visible()
    bob2.page.reload()
    # told before any passphrase is asked for (issue 14, bug 9)
    expect(bob2.page.get_by_role("alert")).to_contain_text("revoked")
    expect(bob2.page.locator("#unlock-passphrase")).to_have_count(0)
