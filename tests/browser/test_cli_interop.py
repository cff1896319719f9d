"""The Python client (`chat-client`, run as subprocesses) and the browser app (Chromium)
on one live daphne with Redis: they chat both ways, a key file moves between them both
ways and reads the history its device could read, and each links a device of the other
kind to its account (PROTOCOL §7.2) with the history (§7.3).

The CLI makes 2048-bit keys (CHAT_KEY_BITS, set by `Cli`), the browser 3072-bit ones.
"""

from __future__ import annotations

import json
import queue
import secrets
import subprocess
import threading

import pytest
from playwright.sync_api import expect

from chatclient import protocol
from scripts.devstack import DjangoStack
from scripts.people.browser import PASSPHRASE, PASSWORD, ChatUser
from tests.test_client_cli import REPO, Cli

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


class Running:
    """A `chat-client` command left running (e.g. `device link`, which waits): its stdout
    lines arrive on a queue."""

    def __init__(self, cli: Cli, *args: str):
        self.proc = subprocess.Popen(
            cli.argv(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=cli.env(),
            cwd=REPO,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_line(self, prefix: str, timeout: float = 60) -> str:
        """The first stdout line that starts with `prefix` (waits for it)."""
        while True:
            line = self.lines.get(timeout=timeout)
            if line.startswith(prefix):
                return line

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        code = self.proc.wait(timeout=timeout)
        self.reader.join(timeout)
        rest = []
        while not self.lines.empty():
            rest.append(self.lines.get())
        return code, "\n".join(rest) + self.proc.stderr.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def test_browser_linked_by_the_cli_reads_the_history(people, cli_user):
    bob = people("bob").start()
    erin_browser = people("erin")  # only its username for now: the CLI registers the account
    erin = cli_user(erin_browser.username)
    erin.run("send", bob.username, "erin's terminal, first")
    bob.open_conversation(erin.username)
    bob.expect_message("erin's terminal, first")
    bob.send("bob to erin")
    bob.expect_sent("bob to erin")
    code_before = erin.run("safety-number", bob.username).stdout

    # the browser asks to join erin's account; the CLI approves with the browser's code
    erin_browser.login()
    code = erin_browser.request_link(name="Erin's browser")
    listed = erin.run("device", "approve", "--code", code.upper()).stdout
    assert "approved request" in listed and "history: gave device" in listed
    erin_browser.ready(timeout=30_000)
    erin_browser.open_conversation(bob.username)
    erin_browser.expect_message("erin's terminal, first")
    erin_browser.expect_message("bob to erin")
    verified_in_browser(erin_browser, 2)
    # the new browser sends; bob sees no warning, the CLI reads it, the safety number holds
    erin_browser.send("erin, now from the linked browser")
    erin_browser.expect_sent("erin, now from the linked browser")
    bob.expect_message("erin, now from the linked browser")
    expect(bob.page.locator(".trust-alert")).to_have_count(0)
    assert texts(erin.run("history", bob.username).stdout)[-1] == (
        f"{erin.username}: erin, now from the linked browser"
    )
    assert erin.run("safety-number", bob.username).stdout == code_before


def test_cli_linked_by_the_browser_reads_the_history(people, stack, tmp_path):
    alice = people("alice").start()
    bob = people("bob").start()
    bob.open_direct(alice.username)
    bob.send("bob to alice's browser")
    alice.open_conversation(bob.username)
    alice.expect_message("bob to alice's browser")
    alice.send("alice's browser to bob")
    alice.expect_sent("alice's browser to bob")

    terminal = Cli(
        stack.base_url, tmp_path / "alice-cli", passphrase=CLI_PASSPHRASE, password=PASSWORD
    )
    terminal.run("login", alice.username)
    link = Running(terminal, "device", "link", "--name", "alice's terminal")
    try:
        cli_code = link.wait_line("link code: ").removeprefix("link code: ")
        shown = alice.approval_code()
        assert protocol.same_link_code(cli_code, shown)
        expect(alice.page.locator("dialog[open]")).to_contain_text("alice's terminal")
        alice.approve_link()
        code, output = link.finish()
        assert code == 0, output
        assert "linked: device" in output
    finally:
        link.stop()
    alice.expect_transfer_done()
    assert texts(terminal.run("history", bob.username).stdout) == [
        f"{bob.username}: bob to alice's browser",
        f"{alice.username}: alice's browser to bob",
    ]
    # the terminal sends as alice; bob's browser takes it as alice's, without a warning
    terminal.run("send", bob.username, "alice, now from the linked terminal")
    bob.expect_message("alice, now from the linked terminal")
    expect(bob.page.locator(".trust-alert")).to_have_count(0)
    verified_in_browser(bob, 3)
