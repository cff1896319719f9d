"""The browser app end to end: Debian's Chromium against a live daphne."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.chat_helpers import PASSPHRASE, ChatUser

pytestmark = pytest.mark.browser

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


def test_group_of_three(people):
    alice = people("alice").start()
    bob = people("bob").start()
    carol = people("carol").start()
    page = alice.page
    page.get_by_role("button", name="New group").click()
    page.fill("#group-title", "Book club")
    for name in (bob.username, carol.username):
        page.fill("#group-search", name)
        page.locator(".pick", has_text=name).click()
    page.get_by_role("button", name="Create group").click()
    expect(page.locator("#pane-title")).to_have_text("Book club")
    alice.send("Welcome to the group")
    for user in (bob, carol):
        user.open_conversation("Book club")
        user.expect_message("Welcome to the group")
    bob.send("Bob here")
    carol.send("Carol here")
    for user in (alice, bob, carol):
        user.expect_message("Bob here")
        user.expect_message("Carol here")
    # the owner removes carol; carol keeps what she read but gets nothing new
    page.get_by_role("button", name="Members").click()
    page.get_by_role("button", name=f"Remove {carol.username}").click()
    page.get_by_role("dialog", name="Remove member").get_by_role("button", name="Remove").click()
    page.keyboard.press("Escape")
    expect(carol.page.locator("#composer-input")).to_be_disabled(timeout=15_000)
    alice.send("After carol left")
    bob.expect_message("After carol left")
    carol.expect_message("Carol here")
    expect(carol.messages().filter(has_text="After carol left")).to_have_count(0)
    # bob leaves on his own
    bob.page.get_by_role("button", name="Members").click()
    bob.page.get_by_role("button", name="Leave group").click()
    bob.page.get_by_role("dialog", name="Leave group").get_by_role("button", name="Leave").click()
    expect(bob.page.locator("#composer-input")).to_be_disabled()
    expect(alice.page.locator(".pane-sub")).to_have_text(alice.username, timeout=15_000)
    # the owner adds bob back
    page.get_by_role("button", name="Members").click()
    page.fill("#member-search", bob.username)
    page.locator(".pick", has_text=bob.username).click()
    expect(page.get_by_role("button", name=f"Remove {bob.username}")).to_be_visible()
    page.keyboard.press("Escape")
    expect(bob.page.locator("#composer-input")).to_be_enabled(timeout=15_000)
    alice.send("Welcome back bob")
    bob.expect_message("Welcome back bob")
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


def test_key_change_warning_when_contact_adds_a_device(people, browser, stack):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    alice.send("Before the new device")
    bob.open_conversation(alice.username)
    bob.expect_message("Before the new device")

    # alice verifies bob's device on the security page; the chat header shows it
    alice.page.locator("#security-link").click()
    contact = alice.page.locator(f".contact[data-username={bob.username}]")
    contact.get_by_label("Verified").check()
    expect(contact.locator(".tag-ok")).to_have_text("✓ verified")
    alice.page.get_by_role("link", name="Back to chats").click()
    alice.open_conversation(bob.username)
    expect(alice.page.locator(".verified-tag")).to_be_visible()

    bob2 = people("bob")
    bob2.login().setup_device(name="Bob phone")
    warning = alice.page.locator(".trust-alert")
    expect(warning).to_contain_text(f"{bob.username} added a new device", timeout=15_000)
    expect(warning).to_contain_text("Bob phone")
    # the new device is not verified, so the conversation is no longer "verified"
    expect(alice.page.locator(".verified-tag")).to_have_count(0)
    warning.get_by_role("button", name="Acknowledge").click()
    expect(warning).to_have_count(0)

    alice.send("After the new device")
    bob2.open_conversation(alice.username)
    bob2.expect_message("After the new device")
    bob.expect_message("After the new device")
    # the history from before bob's new device is marked, not shown as text
    expect(bob2.page.locator(".msg[data-state=not_for_device]")).to_have_count(1)
    no_problems(alice, bob)


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


TAMPER = """async ([peer]) => {
  const p = await import('/static/chat/protocol.js');
  const { api } = await import('/static/chat/api.js');
  const me = (await api.session()).user;
  const keys = await p.generateDeviceKeys(2048);
  await api.registerDevice({ name: 'tamper', enc_spki: p.b64encode(keys.encSpki),
    sig_spki: p.b64encode(keys.sigSpki), proof: await p.signDeviceProof(keys, me.id) });
  const { conversation } = await api.createConversation([peer]);
  const recipients = {};
  const peerKids = [];
  for (const name of [peer, me.username]) {
    for (const d of (await api.userDevices(name)).devices) {
      recipients[d.enc_kid] = await p.importEncryptionKey(p.b64decode(d.enc_spki));
      if (name === peer) peerKids.push(d.enc_kid);
    }
  }
  const clientMsgId = p.newClientMsgId();
  const envelope = await p.sealEnvelope({ plaintext: p.textMessage('tampered secret'), conversationId: conversation.id,
    senderId: me.id, clientMsgId, senderKeys: keys, recipientKeys: recipients });
  // keys are not signed: wrap another content key for the peer (the server cannot tell)
  const other = crypto.getRandomValues(new Uint8Array(32));
  for (const kid of peerKids) envelope.keys[kid] = p.b64encode(await crypto.subtle.encrypt(p.OAEP, recipients[kid], other));
  await api.send(conversation.id, clientMsgId, envelope);
  return conversation.id;
}"""


def test_message_that_fails_to_open_is_marked_not_shown(people):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    alice.send("a fine message")
    bob.page.evaluate(TAMPER, [alice.username])
    failed = alice.page.locator(".msg[data-state=failed]")
    expect(failed).to_have_count(1, timeout=15_000)
    expect(failed).to_contain_text("could not be decrypted or verified")
    expect(alice.page.locator(".messages")).not_to_contain_text("tampered secret")


def test_revoked_device_is_disconnected_and_must_be_set_up_again(people):
    bob = people("bob").start()
    bob2 = people("bob")
    bob2.login().setup_device(name="Old laptop")
    bob.page.locator("#security-link").click()
    bob.page.get_by_role("button", name="Revoke Old laptop").click()
    bob.page.get_by_role("dialog", name="Revoke device").get_by_role(
        "button", name="Revoke"
    ).click()
    expect(bob.page.locator(".device.revoked")).to_have_count(1)
    expect(bob2.page.get_by_role("heading", name="Disconnected")).to_be_visible(timeout=15_000)
    bob2.page.reload()
    bob2.unlock()
    expect(bob2.page.get_by_role("alert")).to_contain_text("This device was revoked")
    expect(bob2.page.get_by_role("heading", name="Set up this browser")).to_be_visible()
