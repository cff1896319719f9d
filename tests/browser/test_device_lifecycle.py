"""Devices under v2 identities (PROTOCOL §3, §7): the v2 key file (interoperable with the
Python client) and passphrase change, a reset (contacts see the safety-number change and
cannot write until they accept it), stale_devices re-encryption to a newly linked device
without any warning, a device without a valid cert as a blocking warning naming the
person, an uncertified device of one's own as an alert with "Revoke it", and the safety
number page with "Mark as verified"."""

from __future__ import annotations

import json
import threading

import pytest
from playwright.sync_api import expect

from chatclient import keystore as py_keystore
from scripts.people.browser import PASSPHRASE, go_safety, go_security

pytestmark = pytest.mark.browser

NEW_PASSPHRASE = "amber lantern quietly orbit"


def back_to_chats(user) -> None:
    page = user.page
    if page.get_by_role("link", name="← Security").count():
        page.get_by_role("link", name="← Security").click()
    page.get_by_role("link", name="Back to chats").click()
    expect(page.locator("#security-link")).to_be_visible()


def open_advanced(user) -> None:
    details = user.page.locator("details.advanced")
    if details.get_attribute("open") is None:
        details.locator("summary").click()


def test_key_file_export_import_and_passphrase_change(people, tmp_path):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    alice.send("Readable after import")
    bob.open_conversation(alice.username)
    bob.expect_message("Readable after import")

    key_file = alice.export_key_file(tmp_path / "alice.json")
    open_advanced(alice)
    sig_fp = alice.page.locator("#my-sig-fp").inner_text().replace(" ", "")
    id_fp = alice.page.locator("#my-id-fp").inner_text().replace(" ", "")
    record = json.loads(key_file.read_text())
    assert record["kind"] == "e2ee-chat-keystore" and record["username"] == alice.username
    assert record["v"] == 2
    assert set(record) >= {
        "v",
        "user_id",
        "device_id",
        "enc_kid",
        "sig_kid",
        "id_kid",
        "kdf",
        "iv",
        "ct",
    }
    assert record["kdf"]["iterations"] >= 600_000
    # the same file opens in the Python client, with the identity key
    keys = py_keystore.unlock_keystore(record, PASSPHRASE)
    assert keys.sig_kid == sig_fp
    assert keys.id_kid == id_fp == record["id_kid"]

    # another browser: log in, import the file (instead of linking), read the history
    alice2 = people("alice")
    alice2.login()
    expect(
        alice2.page.get_by_role("heading", name="Add this browser to your account")
    ).to_be_visible()
    alice2.page.get_by_role("button", name="Import a key file").click()
    alice2.page.set_input_files("#key-file", str(key_file))
    alice2.page.fill("#import-passphrase", "wrong wrong wrong")
    alice2.page.get_by_role("button", name="Import and unlock").click()
    expect(alice2.page.get_by_role("alert")).to_contain_text("Wrong passphrase")
    alice2.page.fill("#import-passphrase", PASSPHRASE)
    alice2.page.get_by_role("button", name="Import and unlock").click()
    alice2.ready(timeout=30_000)
    alice2.open_conversation(bob.username)
    alice2.expect_message("Readable after import")

    # change the passphrase (alice is still on the security page): old refused, new works
    page = alice.page
    page.fill("#old-passphrase", "not it at all")
    page.get_by_label("New passphrase", exact=True).fill(NEW_PASSPHRASE)
    page.get_by_label("New passphrase (again)").fill(NEW_PASSPHRASE)
    page.get_by_role("button", name="Change passphrase").click()
    expect(page.get_by_role("alert").filter(has_text="wrong")).to_be_visible()
    page.fill("#old-passphrase", PASSPHRASE)
    page.get_by_role("button", name="Change passphrase").click()
    expect(page.locator(".toast")).to_contain_text("Passphrase changed")
    page.reload()
    alice.unlock(PASSPHRASE)
    expect(page.get_by_role("alert")).to_contain_text("Wrong passphrase")
    alice.unlock(NEW_PASSPHRASE)
    alice.ready(timeout=30_000)


def test_reset_signs_out_other_devices_and_contacts_must_accept(people):
    alice = people("alice").start()
    bob = people("bob").start()
    bob.open_direct(alice.username)
    bob.send("hello before reset")
    alice.open_conversation(bob.username)
    alice.expect_message("hello before reset")
    number_before = go_safety(bob, alice.username)
    back_to_chats(bob)
    bob.open_conversation(alice.username)

    # a new browser with no other device at hand: set up without another device (a reset)
    alice2 = people("alice")
    alice2.login()
    page = alice2.page
    page.get_by_role("button", name="Set up without another device").click()
    warning = page.get_by_role("note").filter(has_text="This resets your account")
    expect(warning).to_contain_text("Every other device of yours is signed out")
    expect(warning).to_contain_text("safety number changed")
    page.get_by_label("Passphrase", exact=True).fill(NEW_PASSPHRASE)
    page.get_by_label("Passphrase (again)").fill(NEW_PASSPHRASE)
    page.check("#understand")
    page.get_by_role("button", name="Reset and set up this browser").click()
    page.locator("dialog[open]").get_by_role("button", name="Reset my account").click()
    alice2.ready()

    # the old device is signed out at once
    expect(alice.page.get_by_role("heading", name="Disconnected")).to_be_visible()
    # bob is told inside the conversation and cannot write to alice until he accepts
    notice = bob.page.locator(".trust-alert[data-kind=identity_changed]")
    expect(notice).to_contain_text(f"{alice.username}’s safety number changed")
    expect(bob.page.get_by_role("button", name="Send")).to_be_disabled()
    bob.page.locator("#composer-input").fill("are you there?")
    bob.page.locator("#composer-input").press("Enter")
    expect(bob.page.locator(".msg.own", has_text="are you there?")).to_have_count(0)
    # his safety number page shows the change and the new number
    go_safety_changed = bob.page.locator(".trust-alert").get_by_role(
        "link", name="Compare safety numbers"
    )
    go_safety_changed.click()
    expect(bob.page.get_by_role("alert")).to_contain_text("safety number changed")
    new_number = bob.page.locator("#safety-number").get_attribute("data-number")
    assert new_number and new_number != number_before
    assert bob.page.locator("#previous-safety-number").get_attribute("data-number") == number_before
    bob.page.get_by_role("button", name="Accept new safety number").click()
    bob.page.locator("dialog[open]").get_by_role("button", name="Accept new safety number").click()
    expect(bob.page.locator("#verify-toggle")).to_have_text("Mark as verified")
    assert bob.page.locator("#safety-number").get_attribute("data-number") == new_number
    back_to_chats(bob)
    bob.open_conversation(alice.username)
    expect(bob.page.locator(".trust-alert")).to_have_count(0)
    bob.send("hello after reset")
    bob.expect_sent("hello after reset")
    alice2.open_conversation(bob.username)
    alice2.expect_message("hello after reset")
    # what was sent to the old device is not readable on the new one
    expect(alice2.page.locator(".msg[data-state=not_for_device]")).to_have_count(1)
    # and alice sees the same new number for bob as bob sees for her
    assert go_safety(alice2, bob.username) == new_number


def link(user, other, name: str) -> None:
    """Link a second browser `other` of `user`'s account and wait until it is ready."""
    other.login()
    code = other.request_link(name=name)
    assert user.approval_code() == code
    user.approve_link()
    other.ready(timeout=30_000)


def test_stale_devices_refetch_and_reencrypt(people):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    alice.send("one")
    bob.open_conversation(alice.username)
    bob.expect_message("one")

    # alice's looks at bob's devices get the old list (as if she missed the change) until
    # she sends: every refetch the devices_changed frame may cause is served stale.
    old_list = alice.page.request.get(
        f"/api/users/{bob.username}/devices/?include_revoked=1"
    ).text()
    served = threading.Event()

    def stale(route):
        served.set()
        route.fulfill(status=200, content_type="application/json", body=old_list)

    devices_url = f"**/api/users/{bob.username}/devices/**"
    alice.page.route(devices_url, stale)
    bob2 = people("bob")
    # the devices_changed frame makes alice refetch bob's list: it is served stale
    with alice.page.expect_request(
        lambda r: f"/api/users/{bob.username}/devices/" in r.url, timeout=30_000
    ):
        link(bob, bob2, "Bob tablet")
    assert served.is_set()
    alice.page.unroute(devices_url, stale)

    alice.send("two")
    # the server answers stale_devices; the client refetches and re-encrypts to bob's new,
    # certified device without asking anyone (a linked device needs no warning)
    alice.expect_sent("two")
    bob.expect_message("two")
    bob2.open_conversation(alice.username)
    bob2.expect_message("two")
    expect(alice.page.locator(".trust-alert")).to_have_count(0)


FORGE_DEVICE = """async ([list, withCert]) => {
  const p = await import('/static/chat/protocol.js');
  const keys = await p.generateDeviceKeys(2048);
  const real = list.devices.find((d) => !d.revoked);
  const device = { ...real, id: real.id + 1000, name: 'Server phone' };
  device.enc_spki = p.b64encode(keys.encSpki);
  device.sig_spki = p.b64encode(keys.sigSpki);
  device.enc_kid = keys.encKid;
  device.sig_kid = keys.sigKid;
  device.proof = await p.signDeviceProof(keys, list.user.id);
  device.cert = withCert ? real.cert : null;
  list.devices.push(device);
  return JSON.stringify(list);
}"""


def test_device_without_valid_cert_is_a_blocking_warning(people):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    alice.send("before")
    bob.open_conversation(alice.username)
    bob.expect_message("before")

    # a server that lists one more device for bob, with a valid proof and a copied cert
    real = alice.page.request.get(f"/api/users/{bob.username}/devices/?include_revoked=1").json()
    forged = alice.page.evaluate(FORGE_DEVICE, [real, True])
    alice.page.route(
        f"**/api/users/{bob.username}/devices/**",
        lambda route: route.fulfill(status=200, content_type="application/json", body=forged),
    )
    alice.page.reload()
    alice.unlock().ready()
    alice.open_conversation(bob.username)
    notice = alice.page.locator(".trust-alert[data-kind=uncertified_device]")
    expect(notice).to_contain_text(
        f"{bob.username}’s account lists a device that {bob.username}’s identity did not certify"
    )
    expect(notice).to_contain_text("Server phone")
    expect(alice.page.get_by_role("button", name="Send")).to_be_disabled()
    alice.page.unroute(f"**/api/users/{bob.username}/devices/**")


def test_own_uncertified_device_is_an_alert_with_revoke(people):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    real = alice.page.request.get(f"/api/users/{alice.username}/devices/?include_revoked=1").json()
    forged = alice.page.evaluate(FORGE_DEVICE, [real, False])
    alice.page.route(
        f"**/api/users/{alice.username}/devices/**",
        lambda route: route.fulfill(status=200, content_type="application/json", body=forged),
    )
    alice.page.goto("/")
    alice.unlock().ready()
    # a red card on the chat screen before any conversation is open
    tray = alice.page.locator(".identity-tray .trust-alert[data-kind=own_uncertified_device]")
    expect(tray).to_contain_text("A device on your account was not added by you")
    expect(tray.get_by_role("button", name="Revoke it")).to_be_visible()
    # the conversation shows the full notice (and the card steps back)
    alice.open_conversation(bob.username)
    notice = alice.page.locator(".alerts .trust-alert[data-kind=own_uncertified_device]")
    expect(notice).to_contain_text("A device on your account was not certified by your identity")
    expect(notice).to_contain_text("Server phone")
    expect(notice.get_by_role("button", name="Revoke it")).to_be_visible()
    expect(tray).to_be_hidden()
    expect(alice.page.get_by_role("button", name="Send")).to_be_disabled()
    go_security(alice)
    alert = alice.page.locator(".own-alerts .trust-alert")
    expect(alert).to_contain_text("Server phone")
    expect(alert.get_by_role("button", name="Revoke it")).to_be_visible()
    alice.page.unroute(f"**/api/users/{alice.username}/devices/**")


def test_safety_number_matches_and_mark_as_verified(people):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    alice.send("hi")
    bob.open_conversation(alice.username)
    bob.expect_message("hi")
    mine = go_safety(alice, bob.username)
    theirs = go_safety(bob, alice.username)
    assert mine == theirs
    expect(alice.page.locator("#safety-number .safety-group")).to_have_count(12)
    alice.page.get_by_role("button", name="Mark as verified").click()
    expect(alice.page.locator("#verified-tag")).to_have_text("✓ Verified")
    back_to_chats(alice)
    alice.open_conversation(bob.username)
    expect(alice.page.locator(".verified-tag")).to_be_visible()
    go_security(alice)
    expect(alice.page.locator(f".contact-row[data-username={bob.username}] .tag")).to_have_text(
        "✓ verified"
    )
