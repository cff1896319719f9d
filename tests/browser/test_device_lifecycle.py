"""Key file export/import (interoperable with the Python client), passphrase change,
device reset, stale_devices re-encryption and the blocking key-replacement warning."""

from __future__ import annotations

import json
import threading

import pytest
from playwright.sync_api import expect

from chatclient import keystore as py_keystore
from tests.browser.chat_helpers import PASSPHRASE, go_security

pytestmark = pytest.mark.browser

NEW_PASSPHRASE = "amber lantern quietly orbit"


def test_key_file_export_import_and_passphrase_change(people, tmp_path):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    alice.send("Readable after import")
    bob.open_conversation(alice.username)
    bob.expect_message("Readable after import")

    key_file = alice.export_key_file(tmp_path / "alice.json")
    fingerprint = alice.page.locator("#my-sig-fp").inner_text()
    record = json.loads(key_file.read_text())
    assert record["kind"] == "e2ee-chat-keystore" and record["username"] == alice.username
    assert set(record) >= {"v", "user_id", "device_id", "enc_kid", "sig_kid", "kdf", "iv", "ct"}
    assert record["kdf"]["iterations"] >= 600_000
    # the same file opens in the Python client
    keys = py_keystore.unlock_keystore(record, PASSPHRASE)
    assert keys.sig_kid == fingerprint.replace(" ", "")

    # another browser: log in, import the file, read the history
    alice2 = people("alice")
    alice2.login()
    alice2.page.get_by_role("button", name="Import a key file").click()
    alice2.page.set_input_files("#key-file", str(key_file))
    alice2.page.fill("#import-passphrase", "wrong wrong wrong")
    alice2.page.get_by_role("button", name="Import and unlock").click()
    expect(alice2.page.get_by_role("alert")).to_contain_text("Wrong passphrase")
    alice2.page.fill("#import-passphrase", PASSPHRASE)
    alice2.page.get_by_role("button", name="Import and unlock").click()
    alice2.page.wait_for_selector("body[data-ready=true]", timeout=30_000)
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
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)


def test_reset_device_revokes_the_old_one(people):
    alice = people("alice").start()
    bob = people("bob").start()
    bob.open_direct(alice.username)
    bob.send("hello before reset")
    alice.page.reload()
    alice.page.get_by_role("button", name="Lost your passphrase? Reset this device").click()
    expect(alice.page.get_by_role("note").filter(has_text="old device is revoked")).to_be_visible()
    alice.page.get_by_label("Passphrase", exact=True).fill(NEW_PASSPHRASE)
    alice.page.get_by_label("Passphrase (again)").fill(NEW_PASSPHRASE)
    alice.page.check("#understand")
    alice.page.get_by_role("button", name="Reset this device").click()
    alice.page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    alice.open_conversation(bob.username)
    expect(alice.page.locator(".msg[data-state=not_for_device]")).to_have_count(1)
    # bob is told: a device was added and one removed
    bob_alert = bob.page.locator(".trust-alert")
    expect(bob_alert).to_contain_text("added a new device", timeout=15_000)
    expect(bob_alert).to_contain_text("removed the device")
    bob_alert.get_by_role("button", name="Acknowledge").click()
    bob.send("hello after reset")
    alice.expect_message("hello after reset")
    go_security(alice)
    expect(alice.page.locator(".device.revoked")).to_have_count(1)


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
    bob2.login().setup_device(name="Bob tablet")
    alice.page.wait_for_timeout(500)
    for _ in range(50):
        if served.is_set():
            break
        alice.page.wait_for_timeout(100)
    assert served.is_set()
    expect(alice.page.locator(".trust-alert")).to_have_count(0)
    alice.page.unroute(devices_url, stale)

    alice.send("two")
    # the server answers stale_devices; the client refetches, shows the change, re-encrypts
    expect(alice.page.locator(".trust-alert")).to_contain_text("Bob tablet", timeout=15_000)
    alice.expect_sent("two")
    bob.expect_message("two")
    bob2.open_conversation(alice.username)
    bob2.expect_message("two")


FORGE_DEVICE = """async ([list]) => {
  const p = await import('/static/chat/protocol.js');
  const keys = await p.generateDeviceKeys(2048);
  const device = list.devices[0];
  device.enc_spki = p.b64encode(keys.encSpki);
  device.sig_spki = p.b64encode(keys.sigSpki);
  device.enc_kid = keys.encKid;
  device.sig_kid = keys.sigKid;
  device.proof = await p.signDeviceProof(keys, list.user.id);
  return JSON.stringify(list);
}"""


def test_replaced_key_is_a_blocking_warning(people):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    alice.send("before")
    bob.open_conversation(alice.username)
    bob.expect_message("before")

    # a server that swaps bob's device keys (same device id, valid proof for new keys)
    real = alice.page.request.get(f"/api/users/{bob.username}/devices/?include_revoked=1").json()
    forged = alice.page.evaluate(FORGE_DEVICE, [real])
    alice.page.route(
        f"**/api/users/{bob.username}/devices/**",
        lambda route: route.fulfill(status=200, content_type="application/json", body=forged),
    )
    go_security(alice)
    expect(
        alice.page.locator(f".contact[data-username={bob.username}] .callout-warn")
    ).to_be_visible()
    alice.page.get_by_role("link", name="Back to chats").click()
    alice.open_conversation(bob.username)
    alert = alice.page.locator(".trust-alert")
    expect(alert).to_contain_text("Sending is paused")
    expect(alert).to_contain_text("were replaced")
    expect(alice.page.get_by_role("button", name="Send")).to_be_disabled()
    alice.page.unroute(f"**/api/users/{bob.username}/devices/**")
