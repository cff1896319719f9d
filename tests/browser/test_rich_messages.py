"""Replies, reactions, edits, deletes, links, text direction and the composer's limits in
the browser (issue 14, PROTOCOL §10.1), with two people in one direct chat on the shared
stack: each test sends its own messages, so they share the (costly) set-up browsers. The
last test adds a Python client (chatclient, low-level ``send`` with chatclient/payloads.py)
and checks that each side shows what the other sent."""

from __future__ import annotations

import asyncio
import re
import secrets
import threading

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from chatclient import payloads, protocol
from chatclient.client import ChatClient
from chatclient.devices import setup_first_device
from chatclient.session import ChatSession
from scripts.people.axe import assert_clean
from scripts.people.browser import PASSWORD, ChatUser

pytestmark = pytest.mark.browser

NAMES = {n: f"{n}{secrets.token_hex(3)}" for n in ("alice", "bob")}


@pytest.fixture(scope="module")
def pair(browser, shared_stack):
    """alice and bob, set up, each with their direct chat open."""
    # alice's page lets axe-core in (the last test); bob's keeps the CSP
    alice = ChatUser(browser, shared_stack.base_url, NAMES["alice"], bypass_csp=True).start()
    bob = ChatUser(browser, shared_stack.base_url, NAMES["bob"]).start()
    alice.open_direct(bob.username)
    alice.send("hello bob")
    bob.open_conversation(alice.username)
    bob.expect_message("hello bob")
    yield alice, bob
    problems = alice.problems + bob.problems
    alice.close()
    bob.close()
    assert not problems, problems


def message(user: ChatUser, text: str):
    """The stored message whose own text (not a quote) holds `text`."""
    page = user.page
    return page.locator(".messages .msg[data-seq]", has=page.locator(".msg-text", has_text=text))


def act(user: ChatUser, text: str, action: str) -> None:
    """Hover the message and click one of its actions (React, Reply, Edit, Delete for everyone).

    The actions show on hover; a frame that redraws the timeline between the hover and the
    click (an ack, the conversation becoming accepted) hides them until the pointer moves,
    as for a person, so the hover is done again."""
    node = message(user, text)
    button = node.get_by_role("button", name=action, exact=True)
    for _ in range(3):
        node.hover()
        try:
            button.click(timeout=5_000)
            return
        except PlaywrightTimeout:
            continue
    node.hover()
    button.click()


def conversation_id(user: ChatUser) -> int:
    return int(re.search(r"[?&]c=(\d+)", user.page.url).group(1))


def test_a_reply_quotes_its_message_on_both_sides_and_leads_back_to_it(pair):
    alice, bob = pair
    alice.send("Lunch at noon on Friday?")
    bob.expect_message("Lunch at noon")
    act(bob, "Lunch at noon", "Reply")
    expect(bob.page.locator(".composer-context")).to_contain_text("Replying to " + alice.username)
    bob.send("Yes, see you there")
    for user in pair:
        reply = message(user, "see you there")
        expect(reply.locator(".quote")).to_contain_text("Lunch at noon on Friday?")
    alice.page.locator(".messages").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    message(alice, "see you there").locator(".quote").click()
    original = message(alice, "Lunch at noon")
    expect(original).to_be_focused()
    # the keyboard: R on a focused message starts a reply to it
    original.press("r")
    expect(alice.page.locator(".composer-context")).to_contain_text("Replying to You")
    alice.page.locator("#composer-input").press("Escape")
    expect(alice.page.locator(".composer-context")).to_be_hidden()


def test_reactions_by_two_people_show_counts_and_who_and_can_be_taken_back(pair):
    alice, bob = pair
    alice.send("Reactions welcome")
    bob.expect_message("Reactions welcome")
    act(bob, "Reactions welcome", "React")
    picker = bob.page.get_by_role("dialog", name="React to the message")
    picker.get_by_role("button", name="React with 👍").click()
    expect(picker).to_be_hidden()
    act(alice, "Reactions welcome", "React")
    picker = alice.page.get_by_role("dialog", name="React to the message")
    picker.get_by_label("Any emoji").fill("ok")
    picker.get_by_role("button", name="Add").click()
    expect(picker.get_by_role("alert")).to_contain_text("not one emoji")
    picker.get_by_label("Any emoji").fill("🦀")
    picker.get_by_role("button", name="Add").click()
    alice_view = message(alice, "Reactions welcome")
    # as a person would, click once the message has settled: a redraw between the press
    # and the release (her crab stored, bob's read mark) makes the click land on no chip
    expect(alice_view.locator(".reaction[data-emoji='🦀']")).to_have_count(1)
    expect(alice_view).to_have_attribute("data-delivery", "read")
    alice_view.locator(".reaction[data-emoji='👍']").click()  # join bob's
    for user, other in ((alice, bob), (bob, alice)):
        thumbs = message(user, "Reactions welcome").locator(".reaction[data-emoji='👍']")
        expect(thumbs.locator(".reaction-count")).to_have_text("2")
        expect(thumbs).to_have_attribute("title", re.compile(f"{other.username} and you"))
        expect(
            message(user, "Reactions welcome").locator(".reaction[data-emoji='🦀']")
        ).to_have_count(1)
    expect(alice_view.locator(".reaction.mine")).to_have_count(2)
    alice_view.locator(".reaction[data-emoji='👍']").click()  # take it back
    for user in pair:
        thumbs = message(user, "Reactions welcome").locator(".reaction[data-emoji='👍']")
        expect(thumbs.locator(".reaction-count")).to_have_text("1")
    # reactions are not messages: no bubble, and the list's preview is still the text
    expect(alice.page.locator(".messages .msg.pending")).to_have_count(0)
    expect(bob.page.locator(".conv-item .conv-sub").first).to_have_text("Reactions welcome")


def test_an_edit_is_seen_by_the_other_side_marked_edited(pair):
    alice, bob = pair
    alice.send("Meet at 1pm")
    alice.send("by the fountain")
    bob.expect_message("by the fountain")
    expect(message(bob, "by the fountain")).to_have_class(re.compile(r"\bgrouped\b"))
    message(alice, "Meet at 1pm").focus()  # the keyboard: E on a focused message of one's own
    alice.page.keyboard.press("e")
    box = alice.page.locator("#composer-input")
    expect(box).to_have_value("Meet at 1pm")
    box.fill("Meet at 2pm")
    box.press("Enter")
    for user in pair:
        edited = message(user, "Meet at 2pm")
        expect(edited.locator(".msg-edited")).to_have_text("edited")
    expect(message(bob, "Meet at 1pm")).to_have_count(0)
    expect(box).to_have_value("")
    # only one's own messages have Edit
    node = message(bob, "Meet at 2pm")
    node.hover()
    expect(node.get_by_role("button", name="Reply")).to_be_visible()
    expect(node.get_by_role("button", name="Edit")).to_have_count(0)


def test_a_delete_is_gone_from_both_screens_and_from_the_server(pair):
    alice, bob = pair
    alice.send("A secret I regret")
    bob.expect_message("A secret I regret")
    seq = message(bob, "A secret I regret").get_attribute("data-seq")
    act(alice, "A secret I regret", "Delete for everyone")
    # screens hide it by the end-to-end `delete` payload; the server forgets the ciphertext
    # only at the take-back that follows it (rich.js deleteForEveryone): wait for that answer
    with alice.page.expect_response(
        lambda r: r.request.method == "DELETE" and "/messages/" in r.url
    ) as taken_back:
        alice.page.get_by_role("dialog").get_by_role("button", name="Delete for everyone").click()
    assert taken_back.value.ok, taken_back.value.status
    for user in pair:
        gone = user.page.locator(f".messages .msg[data-seq='{seq}']")
        expect(gone).to_have_attribute("data-state", "deleted")
        expect(gone).to_contain_text("Message deleted.")
        expect(user.page.locator(".messages")).not_to_contain_text("A secret I regret")
    stored = bob.page.evaluate(
        """async ([c, seq]) => {
          const page = await (await fetch(`/api/conversations/${c}/messages/`)).json();
          return page.messages.find((m) => m.seq === seq);
        }""",
        [conversation_id(bob), int(seq)],
    )
    assert stored["deleted"] is True and stored["envelope"] is None


def test_links_are_clickable_and_safe_and_nothing_else_is_markup(pair):
    alice, bob = pair
    alice.send(
        "See https://example.org/a?b=1. Not javascript:alert(1) nor <b>bold</b> or www.x.org"
    )
    bob.expect_message("See https://example.org")
    node = message(bob, "See https://example.org")
    links = node.locator("a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://example.org/a?b=1")
    expect(links).to_have_attribute("rel", "noopener noreferrer")
    expect(links).to_have_attribute("target", "_blank")
    expect(links).to_have_text("https://example.org/a?b=1")
    expect(node.locator("b")).to_have_count(0)
    expect(node.locator(".msg-text")).to_contain_text("<b>bold</b>")


def test_right_to_left_text_is_laid_out_right_to_left(pair):
    alice, bob = pair
    box = alice.page.locator("#composer-input")
    expect(box).to_have_attribute("dir", "auto")
    alice.send("שלום, מה שלומך היום?")
    alice.send("And in English")
    bob.expect_message("And in English")
    text = message(bob, "שלום").locator(".msg-text")
    expect(text).to_have_attribute("dir", "auto")
    assert text.evaluate("el => getComputedStyle(el).direction") == "rtl"
    assert (
        message(bob, "And in English")
        .locator(".msg-text")
        .evaluate("el => getComputedStyle(el).direction")
        == "ltr"
    )


def test_the_composer_grows_and_keeps_to_the_cap_in_the_open(pair):
    alice, _ = pair
    page = alice.page
    box = page.locator("#composer-input")
    box.fill("word " * 80)
    assert int(box.get_attribute("rows")) > 2
    box.fill("a" * 15500)
    limit = page.locator("#composer-limit")
    expect(limit).to_have_text("15,500 / 16,000 characters")
    refused = box.evaluate(
        """(el) => {
          const data = new DataTransfer();
          data.setData('text/plain', 'b'.repeat(600));
          const event = new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true });
          el.dispatchEvent(event);
          return event.defaultPrevented;
        }"""
    )
    assert refused
    expect(limit).to_contain_text("Not pasted: the message would be 16,100 characters")
    assert len(box.input_value()) == 15500
    box.fill("a" * 16001)
    expect(limit).to_contain_text("1 over the limit")
    box.press("Enter")
    expect(limit).to_contain_text("Not sent")
    assert len(box.input_value()) == 16001
    box.fill("")
    expect(limit).to_be_hidden()


class PythonSide:
    """A `chatclient.ChatClient` user on its own event loop thread (the sync Playwright
    API owns this thread's loop): the Python half of the interop test, through the
    low-level `send` with the payload builders of chatclient/payloads.py."""

    def __init__(self, base_url: str, username: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.username = username
        self.client = self.run(self._start(base_url, username))

    def run(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self, base_url: str, username: str) -> ChatClient:
        session = ChatSession(base_url)
        user = await session.register(username, PASSWORD)
        keys = protocol.generate_device_keys(2048).with_identity(
            protocol.generate_identity_key(2048)
        )
        keys, _, device = await setup_first_device(
            session, name="python", passphrase="p", keys=keys, iterations=100_000
        )
        return ChatClient(
            session, keys, user_id=user["id"], username=username, device_id=device["id"]
        )

    def send(self, target, payload: dict) -> dict:
        return self.run(self.client.send(target, payload))

    def shown(self, conversation_id: int) -> dict[str, dict]:
        """The conversation folded by apply_payloads, by text (the original's)."""
        opened, _ = self.run(self.client.history(conversation_id))
        views = payloads.apply_payloads(
            [
                {
                    "seq": m.seq,
                    "sender_id": m.sender_id,
                    "client_msg_id": m.client_msg_id,
                    "payload": m.content if m.status == "ok" else None,
                    "deleted": m.status == "deleted",
                }
                for m in opened
            ]
        )
        return {(v["payload"] or {}).get("text", f"#{v['seq']}"): v for v in views}

    def close(self) -> None:
        self.run(self.client.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_the_python_client_and_the_browser_agree_on_every_type(pair, shared_stack):
    _, bob = pair
    carl = PythonSide(shared_stack.base_url, f"carl{secrets.token_hex(3)}")
    try:
        conv = carl.run(carl.client.conversation(bob.username))
        first = carl.send(conv, payloads.text_payload("Python says hi"))
        doomed = carl.send(conv, payloads.text_payload("Python regrets this"))
        bob.open_conversation(carl.username)
        bob.expect_message("Python says hi")
        # the browser replies and reacts to what Python sent
        act(bob, "Python says hi", "Reply")
        bob.send("Browser answers")
        act(bob, "Python says hi", "React")
        bob.page.get_by_role("button", name="React with 🙏").click()
        expect(message(bob, "Python says hi").locator(".reaction")).to_have_count(1)
        shown = carl.shown(conv["id"])
        bob_id = shown["Browser answers"]["sender_id"]
        assert shown["Browser answers"]["reply_to"] == payloads.message_ref(
            first["sender_id"], first["client_msg_id"]
        )
        assert shown["Python says hi"]["reactions"] == {"🙏": [bob_id]}
        # Python reacts, edits and deletes; the browser shows each
        answer = shown["Browser answers"]
        ref = payloads.message_ref(answer["sender_id"], answer["client_msg_id"])
        carl.send(conv, payloads.reaction_payload(ref, "👍"))
        carl.send(
            conv,
            payloads.edit_payload(
                payloads.message_ref(first["sender_id"], first["client_msg_id"]),
                "Python says hello",
            ),
        )
        carl.send(
            conv,
            payloads.delete_payload(
                payloads.message_ref(doomed["sender_id"], doomed["client_msg_id"])
            ),
        )
        carl.run(carl.client.session.delete_message(conv["id"], doomed["id"]))
        expect(message(bob, "Browser answers").locator(".reaction[data-emoji='👍']")).to_have_count(
            1
        )
        expect(message(bob, "Python says hello").locator(".msg-edited")).to_be_visible()
        gone = bob.page.locator(f".messages .msg[data-seq='{doomed['seq']}']")
        expect(gone).to_have_attribute("data-state", "deleted")
        expect(message(bob, "Browser answers").locator(".quote")).to_contain_text(
            "Python says hello"
        )
    finally:
        carl.close()


def test_axe_finds_nothing_serious_with_quotes_reactions_edits_deletes_and_the_picker(pair):
    """axe-core (tests/browser/test_accessibility.py's run) on the chat with a quote, a
    reaction and a message's actions shown, then on the open picker alone (a popup covers
    the messages under it, which axe would count against their contrast)."""
    alice, _ = pair
    page = alice.page
    alice.send("Last words for axe")
    act(alice, "Last words for axe", "Reply")
    alice.send("A reply for axe")
    act(alice, "A reply for axe", "React")
    page.get_by_role("button", name="React with 👍").click()
    expect(message(alice, "A reply for axe").locator(".reaction")).to_have_count(1)
    message(alice, "Last words for axe").focus()
    assert_clean(page, "a chat with a reply, a reaction and a message's actions")
    act(alice, "Last words for axe", "React")
    expect(page.get_by_role("dialog", name="React to the message")).to_be_visible()
    found = page.evaluate(
        "async () => (await axe.run('.reaction-picker', {resultTypes: ['violations']})).violations"
        ".filter((v) => ['serious', 'critical'].includes(v.impact)).map((v) => v.id)"
    )
    assert found == [], found
    page.keyboard.press("Escape")
