"""Linking a browser to an account (PROTOCOL §7.2, §7.3) with a real server and two
Chromium contexts of the same user: the request reaches the old device at once, both
screens show the same code, the approval hands over the identity and the trust state,
the history transfer makes the last 200 messages of two conversations readable on the
new device, and a third party notices nothing (no warning, the same safety number)."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from scripts.people.browser import PASSPHRASE, go_safety, go_security

pytestmark = pytest.mark.browser

# Seal and post `count` v2 messages from this browser's own device to a direct
# conversation with `peer` (as the app would, but without typing each one).
SEED = """async ([peer, count, passphrase, prefix]) => {
  const { api, request } = await import('/static/chat/api.js');
  const p = await import('/static/chat/protocol.js');
  const ks = await import('/static/chat/keystore.js');
  const store = await import('/static/chat/store.js');
  const me = (await api.session()).user;
  const keys = await ks.unlockKeystore(await store.getKeystore(me.id), passphrase);
  const { conversation } = await request('POST', '/api/conversations/', { members: [peer] });
  const recipientKeys = {};
  for (const name of [peer, me.username]) {
    for (const d of (await api.userDevices(name)).devices) {
      recipientKeys[d.enc_kid] = await p.importEncryptionKey(p.b64decode(d.enc_spki));
    }
  }
  const sealed = await Promise.all(Array.from({ length: count }, async (_, i) => {
    const clientMsgId = p.newClientMsgId();
    const envelope = await p.sealEnvelope({ plaintext: p.textMessage(`${prefix} ${i + 1}`),
      conversationId: conversation.id, senderId: me.id, clientMsgId, n: i + 1, head: '',
      senderKeys: keys, recipientKeys });
    return { client_msg_id: clientMsgId, envelope };
  }));
  for (const body of sealed) {
    await request('POST', `/api/conversations/${conversation.id}/messages/`, body);
  }
  return conversation.id;
}"""

HISTORY = 210


def back_to_chats(user) -> None:
    page = user.page
    if page.get_by_role("link", name="← Security").count():
        page.get_by_role("link", name="← Security").click()
    page.get_by_role("link", name="Back to chats").click()
    expect(page.locator("#security-link")).to_be_visible()


def seed(user, peer: str, prefix: str, count: int = HISTORY) -> int:
    return user.page.evaluate(SEED, [peer, count, PASSPHRASE, prefix])


def expect_last_messages(user, peer: str, prefix: str, count: int = 200) -> None:
    """The conversation with `peer` shows its last `count` messages decrypted, in order."""
    user.open_conversation(peer)
    user.load_history(count)
    shown = user.shown_messages()[-count:]
    assert [state for state, _ in shown] == ["ok"] * count, [s for s in shown if s[0] != "ok"][:3]
    assert [text for _, text in shown] == [
        f"{prefix} {i}" for i in range(HISTORY - count + 1, HISTORY + 1)
    ]


def test_link_new_browser_end_to_end(people):
    alice = people("alice").start()
    bob = people("bob").start()
    carol = people("carol").start()
    seed(bob, alice.username, "from bob")
    seed(carol, alice.username, "from carol")
    # alice's device reads both conversations (and so accepts both identities)
    alice.page.reload()
    alice.unlock().ready()
    expect_last_messages(alice, bob.username, "from bob", 20)
    expect_last_messages(alice, carol.username, "from carol", 20)

    # carol's view of alice before the link
    carol.page.reload()
    carol.unlock().ready()
    carol.open_conversation(alice.username)
    expect(carol.page.locator(".trust-alert")).to_have_count(0)
    number_before = go_safety(carol, alice.username)
    back_to_chats(carol)

    # a second browser of alice's asks to be linked
    alice2 = people("alice")
    alice2.login()
    new_code = alice2.request_link(name="Alice's laptop")
    shown_at = time.monotonic()
    old_code = alice.approval_code(timeout=2_000)  # the request appears within 2 s
    assert time.monotonic() - shown_at < 2.5
    assert old_code == new_code
    expect(alice.page.locator("dialog[open]")).to_contain_text("Alice's laptop")
    alice.approve_link()
    alice2.ready(timeout=30_000)
    alice.expect_transfer_done()

    # the new device reads the last 200 messages of both conversations
    expect_last_messages(alice2, bob.username, "from bob")
    expect_last_messages(alice2, carol.username, "from carol")
    expect(alice2.page.locator(".trust-alert")).to_have_count(0)
    # it adopted alice's trust: bob and carol are accepted, not "new"
    go_security(alice2)
    for name in (bob.username, carol.username):
        row = alice2.page.locator(f".contact-row[data-username={name}]")
        expect(row.locator(".tag")).to_have_text("not verified")

    # carol notices nothing: no warning, the same safety number, and both devices get her message
    carol.open_conversation(alice.username)
    expect(carol.page.locator(".trust-alert")).to_have_count(0)
    assert go_safety(carol, alice.username) == number_before
    back_to_chats(carol)
    carol.open_conversation(alice.username)
    carol.send("welcome, new device")
    carol.expect_sent("welcome, new device")
    expect(carol.page.locator(".trust-alert")).to_have_count(0)
    back_to_chats(alice2)
    alice2.open_conversation(carol.username)
    alice2.expect_message("welcome, new device")
    alice.open_conversation(carol.username)
    alice.expect_message("welcome, new device")
    assert not alice.problems and not alice2.problems and not carol.problems


def test_link_denied_and_cancelled(people):
    alice = people("alice").start()
    alice2 = people("alice")
    alice2.login()
    code = alice2.request_link()
    assert alice.approval_code() == code
    alice.page.locator("dialog[open]").get_by_role("button", name="Deny").click()
    expect(alice2.page.get_by_role("heading", name="Request denied")).to_be_visible()
    expect(alice2.page.get_by_role("alert")).to_contain_text("denied on your other device")
    # start again, then cancel on the new device: the old device's dialog goes away
    alice2.page.get_by_role("button", name="Start again").click()
    alice2.page.get_by_label("Passphrase", exact=True).fill(PASSPHRASE)
    alice2.page.get_by_label("Passphrase (again)").fill(PASSPHRASE)
    alice2.page.get_by_role("button", name="Show link code").click()
    expect(alice2.page.locator("#link-code")).to_be_visible()
    alice.approval_code()
    alice2.page.get_by_role("button", name="Cancel").click()
    expect(
        alice2.page.get_by_role("heading", name="Add this browser to your account")
    ).to_be_visible()
    expect(alice.page.locator("dialog[open]")).to_have_count(0)
    devices = alice.page.request.get("/api/devices/").json()["devices"]
    assert len([d for d in devices if not d["revoked"]]) == 1
