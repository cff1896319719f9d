"""The Python client (`chat-client`, run as subprocesses) and the browser app (Chromium)
on one live daphne with Redis: they chat both ways, and a key file moves between them
both ways and reads the history its device could read.

The CLI makes 2048-bit keys (CHAT_KEY_BITS, set by `Cli`), the browser 3072-bit ones.
"""

from __future__ import annotations

import json
import secrets

import pytest
from playwright.sync_api import expect

from tests.browser.chat_helpers import PASSPHRASE, PASSWORD, ChatUser
from tests.support.services import DjangoStack
from tests.test_client_cli import Cli

pytestmark = pytest.mark.browser

CLI_PASSPHRASE = "granite meadow copper whistle"


@pytest.fixture(scope="module")
def stack(redis_server):
    """One daphne with Redis as its channel layer for this module's tests (they use
    distinct usernames); overrides the in-memory shared stack of conftest."""
    redis_server.flushdb(0)
    server = DjangoStack(1, redis_url=redis_server.url).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cli_user(stack, tmp_path):
    """Factory: a `chat-client` profile registered under `username` with a device set up."""

    def make(username: str, *, name: str = "terminal") -> Cli:
        cli = Cli(stack.base_url, tmp_path / username, passphrase=CLI_PASSPHRASE, password=PASSWORD)
        assert "registered and logged in" in cli.run("register", username).stdout
        assert "registered; key file" in cli.run("device", "setup", "--name", name).stdout
        cli.username = username
        return cli

    return make


def unique(name: str) -> str:
    return f"{name}{secrets.token_hex(3)}"


def texts(history: str) -> list[str]:
    """`chat-client history` lines without their `<created> [<conv>#<seq>] ` prefix."""
    return [line.split("] ", 1)[-1] for line in history.splitlines()]


def verified_in_browser(user: ChatUser, count: int) -> None:
    """The open conversation shows `count` messages, none marked as failed or unreadable."""
    expect(user.messages()).to_have_count(count)
    expect(user.page.locator(".messages .msg:not([data-state=ok])")).to_have_count(0)
    assert user.problems == [], f"{user.username}: {user.problems}"


def test_cli_and_browser_chat_both_ways_with_listen_running(people, cli_user):
    carl = cli_user(unique("carl"))
    listener = carl.listen()
    try:
        listener.connected()
        alice = people("alice").start()
        bob = people("bob").start()

        # the CLI starts a conversation with a browser user, who answers
        assert carl.run("send", alice.username, "hello alice from the terminal").stdout.startswith(
            "sent ["
        )
        expect(
            alice.page.locator(".conv-item", has_text=carl.username).locator(".badge")
        ).to_have_text("1")
        alice.open_conversation(carl.username)
        alice.expect_message("hello alice from the terminal")
        alice.send("hi carl, alice in the browser")
        alice.expect_sent("hi carl, alice in the browser")
        reply = listener.wait_for(lambda e: e.get("text") == "hi carl, alice in the browser")
        assert (reply["status"], reply["sender"], reply["own"]) == ("ok", alice.username, False)

        # a browser user starts a conversation with the CLI user, who answers
        bob.open_direct(carl.username)
        bob.send("hello carl from the browser\nsecond line")
        first = listener.wait_for(lambda e: e["event"] == "message" and e["sender"] == bob.username)
        assert (first["status"], first["seq"]) == ("ok", 1)
        assert first["text"] == "hello carl from the browser\nsecond line"
        assert first["conversation"] != reply["conversation"]
        carl.run("send", f"#{first['conversation']}", stdin="hi bob, carl in the terminal\n")
        bob.expect_message("hi bob, carl in the terminal")
    finally:
        listener.stop()

    # every message either side sent reached the other verified, and nothing else came
    received = [(m["sender"], m["text"], m["status"]) for m in listener.messages() if not m["own"]]
    assert received == [
        (alice.username, "hi carl, alice in the browser", "ok"),
        (bob.username, "hello carl from the browser\nsecond line", "ok"),
    ]
    verified_in_browser(alice, 2)
    verified_in_browser(bob, 2)
    assert texts(carl.run("history", alice.username).stdout) == [
        f"{carl.username}: hello alice from the terminal",
        f"{alice.username}: hi carl, alice in the browser",
    ]


def test_browser_key_file_unlocks_in_the_cli_and_reads_the_history(
    people, cli_user, stack, tmp_path
):
    alice = people("alice").start()
    carl = cli_user(unique("carl"))
    carl.run("send", alice.username, "to alice's browser device")
    alice.open_conversation(carl.username)
    alice.expect_message("to alice's browser device")
    alice.send("from alice's browser device")
    alice.expect_sent("from alice's browser device")

    key_file = alice.export_key_file(tmp_path / "alice-browser-key.json")
    record = json.loads(key_file.read_text())
    assert record["username"] == alice.username

    # a CLI profile of the same user: wrong passphrase refused, the right one imports
    terminal = Cli(stack.base_url, tmp_path / "alice-cli", passphrase="wrong", password=PASSWORD)
    terminal.run("login", alice.username)
    assert terminal.fails("device", "import", str(key_file)) == "wrong passphrase for the key file"
    terminal.passphrase = PASSPHRASE
    assert "imported device" in terminal.run("device", "import", str(key_file)).stdout
    assert json.loads((terminal.dir / "keystore.json").read_text()) == record
    assert texts(terminal.run("history", carl.username).stdout) == [
        f"{carl.username}: to alice's browser device",
        f"{alice.username}: from alice's browser device",
    ]

    # the imported device sends; carl's CLI verifies it as alice's, and so does the browser
    terminal.run("send", carl.username, "alice again, now from the terminal")
    assert texts(carl.run("history", alice.username).stdout)[-1] == (
        f"{alice.username}: alice again, now from the terminal"
    )
    alice.page.get_by_role("link", name="Back to chats").click()
    alice.open_conversation(carl.username)
    alice.expect_message("alice again, now from the terminal")
    verified_in_browser(alice, 3)


def test_cli_key_file_imports_in_the_browser_and_shows_the_history(people, cli_user, tmp_path):
    bob = people("bob").start()
    dora_browser = people("dora")  # only its username for now: the CLI registers the account
    dora = cli_user(dora_browser.username)
    dora.run("send", bob.username, "from dora's terminal")
    bob.open_conversation(dora.username)
    bob.expect_message("from dora's terminal")
    bob.send("to dora's terminal")
    bob.expect_sent("to dora's terminal")

    key_file = tmp_path / "dora-cli-key.json"
    dora.run("device", "export", str(key_file))
    assert json.loads(key_file.read_text()) == json.loads((dora.dir / "keystore.json").read_text())

    dora_browser.login()
    expect(
        dora_browser.page.get_by_role("heading", name="Add this browser to your account")
    ).to_be_visible()
    dora_browser.import_key_file(key_file, CLI_PASSPHRASE)
    dora_browser.open_conversation(bob.username)
    dora_browser.expect_message("from dora's terminal")
    dora_browser.expect_message("to dora's terminal")
    verified_in_browser(dora_browser, 2)

    # the browser sends with the CLI's keys; bob's browser and dora's CLI both read it
    dora_browser.send("dora again, now from the browser")
    dora_browser.expect_sent("dora again, now from the browser")
    bob.expect_message("dora again, now from the browser")
    assert texts(dora.run("history", bob.username).stdout)[-1] == (
        f"{dora.username}: dora again, now from the browser"
    )
    verified_in_browser(bob, 3)
