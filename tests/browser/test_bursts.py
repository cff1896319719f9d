"""Sending with counters (PROTOCOL v2 §2, §9) in the browser: a burst from one tab, two
tabs of one profile sending at once, and a reload in the middle of a burst. Every message
the server stores is acknowledged and shown as sent, none is flagged anywhere, and one
device's `n` rises with `seq` without repeats."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import expect

from scripts.people.browser import ChatUser

pytestmark = pytest.mark.browser

# Submit `count` messages from the composer in one task, as fast typing and Enter would.
BURST = """([prefix, count]) => {
  const box = document.querySelector('#composer-input');
  for (let i = 1; i <= count; i += 1) {
    box.value = `${prefix} ${i}`;
    box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
  }
}"""

FLAGGED = ".messages .msg[data-state=failed], .messages .msg[data-state=replayed], .messages .msg[data-state=out_of_order], .messages .msg.send-failed"


def conversation_id(user: ChatUser) -> int:
    return int(re.search(r"c=(\d+)", user.page.url).group(1))


def stored_counters(stack, conversation: int) -> list[tuple[int, int, int]]:
    """(seq, sender device, n) of the conversation's stored messages, by seq."""
    path = Path(stack.database_url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT seq, sender_device_id, n FROM messaging_message WHERE conversation_id = ? ORDER BY seq",
            (conversation,),
        ).fetchall()


def assert_counters_rise(rows: list[tuple[int, int, int]]) -> None:
    """Per sending device, n strictly rises with seq."""
    last: dict[int, int] = {}
    for seq, device, n in rows:
        assert n is not None and n > last.get(device, 0), (
            f"seq {seq}: n {n} after {last.get(device)}"
        )
        last[device] = n


def sent(user: ChatUser, prefix: str):
    """This user's acknowledged messages whose text is `<prefix> <number>`."""
    text = user.page.locator(".msg-text", has_text=re.compile(rf"^{prefix} \d+$"))
    return user.page.locator(".msg.own:not(.pending)").filter(has=text)


def test_burst_of_fifty_from_one_tab(people, stack):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    alice.send("before the burst")
    bob.open_conversation(alice.username)
    bob.expect_message("before the burst")
    alice.page.evaluate(BURST, ["burst", 50])
    expect(sent(alice, "burst")).to_have_count(50, timeout=30_000)
    delivered = alice.page.locator(".msg.own[data-delivery=sent], .msg.own[data-delivery=read]")
    expect(
        delivered.filter(has=alice.page.locator(".msg-text", has_text=re.compile(r"^burst \d+$")))
    ).to_have_count(50)
    expect(bob.messages().filter(has_text=re.compile(r"^burst \d+$"))).to_have_count(50)
    texts = [t for t in bob.messages().all_inner_texts() if t.startswith("burst ")]
    assert texts == [f"burst {i}" for i in range(1, 51)]
    for user in (alice, bob):
        expect(user.page.locator(FLAGGED)).to_have_count(0)
    rows = stored_counters(stack, conversation_id(alice))
    assert len(rows) == 51
    assert_counters_rise(rows)
    assert alice.problems == [] and bob.problems == []


def test_two_tabs_of_one_profile_send_at_once(people, stack):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    alice.send("from the first tab")
    conv = conversation_id(alice)
    second = alice.new_page()
    second.goto(f"/?c={conv}")
    second.fill("#unlock-passphrase", "violet harbour kettle mountain")
    second.get_by_role("button", name="Unlock").click()
    second.wait_for_selector("body[data-ready=true]", timeout=30_000)
    expect(second.locator("#pane-title")).to_have_text(bob.username)
    bob.open_conversation(alice.username)
    alice.page.evaluate(BURST, ["one", 20])
    second.evaluate(BURST, ["two", 20])
    for page in (alice.page, second):
        text = page.locator(".msg-text", has_text=re.compile(r"^(one|two) \d+$"))
        expect(page.locator(".msg.own:not(.pending)").filter(has=text)).to_have_count(
            40, timeout=30_000
        )
        expect(page.locator(FLAGGED)).to_have_count(0)
    expect(bob.messages().filter(has_text=re.compile(r"^(one|two) \d+$"))).to_have_count(40)
    expect(bob.page.locator(FLAGGED)).to_have_count(0)
    rows = stored_counters(stack, conv)
    assert len(rows) == 41
    assert len({device for _, device, _ in rows}) == 1
    assert_counters_rise(rows)
    # each tab's own messages keep their order
    texts = [t for t in bob.messages().all_inner_texts() if t.startswith(("one ", "two "))]
    for prefix in ("one", "two"):
        mine = [t for t in texts if t.startswith(prefix)]
        assert mine == [f"{prefix} {i}" for i in range(1, 21)]


def test_reload_in_the_middle_of_a_burst(people, stack):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    alice.send("before the reload")
    conv = conversation_id(alice)
    bob.open_conversation(alice.username)
    bob.expect_message("before the reload")
    alice.page.evaluate(BURST, ["reload", 40])
    # reload once some are acknowledged and others are still on their way
    expect(sent(alice, "reload").first).to_be_visible(timeout=30_000)
    alice.page.reload()
    alice.unlock()
    alice.page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    alice.open_conversation(bob.username)
    # whatever was sealed before the reload is sent from the outbox; nothing is flagged
    expect(alice.page.locator(".msg.own.pending")).to_have_count(0, timeout=30_000)
    alice.send("after the reload")
    alice.expect_sent("after the reload")
    bob.expect_message("after the reload")
    rows = stored_counters(stack, conv)
    assert_counters_rise(rows)
    shown = [t for t in bob.messages().all_inner_texts() if t.startswith("reload ")]
    numbers = [int(t.split()[1]) for t in shown]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert len(rows) == 2 + len(shown)
    for user in (alice, bob):
        expect(user.page.locator(FLAGGED)).to_have_count(0)
