"""Local search (issue 14) in the browser: a word in another conversation, far back in
its history, is found after "Rebuild index" and a click jumps to it (older pages loaded,
the message scrolled to and marked); a live message is indexed as it is shown; after a
reload the index opens from IndexedDB, where no plaintext is stored."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from scripts.people.seeding import seed_direct

pytestmark = pytest.mark.browser

# Every key and value of every object store of the app's database, as one string.
DUMP_INDEXEDDB = """async () => {
  const db = await new Promise((ok, no) => { const r = indexedDB.open('e2ee-chat'); r.onsuccess = () => ok(r.result); r.onerror = no; });
  const out = [];
  for (const name of db.objectStoreNames) {
    const store = db.transaction(name).objectStore(name);
    const keys = await new Promise((ok) => { const r = store.getAllKeys(); r.onsuccess = () => ok(r.result); });
    const values = await new Promise((ok) => { const r = db.transaction(name).objectStore(name).getAll(); r.onsuccess = () => ok(r.result); });
    out.push(JSON.stringify(keys), JSON.stringify(values));
  }
  return out.join('\\n');
}"""

SECRET_WORDS = ["Zebrawood", "zebrawood", "quokka", "seeded line", "noon"]


# True once IndexedDB holds an encrypted bucket of the search index (polled: each call
# starts one IndexedDB read and answers what the last one found).
STORED_BUCKET = """() => {
  if (!window.__bucketRead) {
    window.__bucketRead = new Promise((ok, no) => { const r = indexedDB.open('e2ee-chat'); r.onsuccess = () => ok(r.result); r.onerror = no; })
      .then((db) => new Promise((ok) => { const r = db.transaction('kv').objectStore('kv').getAllKeys(); r.onsuccess = () => ok(r.result); }))
      .then((keys) => { window.__bucketStored = keys.some((k) => /^search:\\d+:\\d+:c\\d+:\\d+$/.test(k)); })
      .finally(() => { window.__bucketRead = null; });
  }
  return window.__bucketStored === true;
}"""


def test_search_finds_a_word_in_another_conversation_and_jumps_to_it(people, stack):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    bob.open_conversation(alice.username)
    bob.send("A quokka smiled at me")
    alice.expect_message("A quokka smiled at me")
    page = alice.page
    page.wait_for_function(STORED_BUCKET, polling=100)

    # while alice's page is closed, another conversation is written whose word lies far
    # back: seq 5 of 120 (the newest page is 50)
    page.goto("about:blank")
    texts = [f"seeded line {i}" for i in range(1, 121)]
    texts[4] = "Meet me at the Zebrawood café at noon"
    seeded = seed_direct(stack.base_url, alice.username, texts)
    page.goto("/")
    alice.unlock().ready()
    expect(page.locator(".conv-item", has_text=seeded["username"])).to_be_visible()

    # "/" focuses the search box; the message indexed before the reload is found from
    # storage as typed (prefix, case-folded)
    page.keyboard.press("/")
    expect(page.locator("#conv-search")).to_be_focused()
    page.keyboard.type("QUOK")
    result = page.locator(".msg-result")
    expect(result).to_have_count(1)
    expect(result.locator("mark")).to_have_text("quokka")
    expect(result.locator(".result-conv")).to_have_text(bob.username)

    # never opened here, so not indexed; "Rebuild index" reads every history
    page.fill("#conv-search", "zebraw")
    expect(page.locator(".msg-search .empty-list")).to_have_text("No messages match.")
    page.locator(".msg-search").get_by_role("button", name="Rebuild index").click()
    expect(page.locator(".search-foot")).to_contain_text("Index rebuilt.", timeout=60_000)
    expect(result).to_have_count(1)
    expect(result.locator(".result-conv")).to_have_text(seeded["username"])
    expect(result.locator(".result-sender")).to_have_text(f"{seeded['username']}: ")
    expect(result.locator("mark")).to_have_text("Zebrawood")

    # a click opens the conversation, loads back to seq 5, scrolls to it and marks it
    result.click()
    expect(page.locator("#pane-title")).to_have_text(seeded["username"])
    found = page.locator('.messages .msg[data-seq="5"]')
    expect(found).to_have_class(re.compile(r"\bmsg-found\b"))
    expect(found).to_contain_text("Zebrawood café")
    expect(found).to_be_in_viewport()
    expect(found).to_be_focused()

    # IndexedDB holds the index encrypted: no word of any message in any key or value
    page.wait_for_function(STORED_BUCKET, polling=100)
    dump = page.evaluate(DUMP_INDEXEDDB)
    user_id = page.locator("#app").get_attribute("data-user-id")
    assert f'"search:{user_id}:' in dump
    assert [w for w in SECRET_WORDS if w in dump] == []

    # ↓ from the box and Enter on a result jump back to bob's conversation
    page.fill("#conv-search", "smiled quokka")
    expect(result.locator(".result-conv")).to_have_text(bob.username)
    page.locator("#conv-search").press("ArrowDown")
    expect(result).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#pane-title")).to_have_text(bob.username)
    expect(page.locator(".messages .msg.msg-found")).to_contain_text("A quokka smiled at me")
    assert alice.problems == [] and bob.problems == []
