"""The bots of ``examples/`` run as their users would run them (``python
examples/X.py`` in a process of their own) against one live stack: the echo bot
survives a 16,000-character message, a server restart and the end of its session (it
logs in again), and answers once a message sent while it was stopped; the command bot
answers its commands; the standup bot collects a group's answers and ends.
``CHAT_SDK_FIGURES=1`` adds the 200-send burst (figures for docs/client.md)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from chatclient import protocol
from chatclient.client import ChatClient
from chatclient.devices import setup_first_device
from chatclient.errors import ChatApiError, ChatError
from chatclient.events import Conversation, ReadMark, Status, Typing
from chatclient.objects import Message
from chatclient.session import ChatSession
from chatclient.ws import ChatSocket
from scripts.devstack import BULK_LIMITS, DjangoStack
from tests.conftest import _key_pool, fresh_device_keys
from tests.support.fixtures import _redis_db_index

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PASSWORD = "examples-password-9x!"
PASSPHRASE = "bot passphrase"
END_SESSIONS = """
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
uid = str(get_user_model().objects.get(username={name!r}).pk)
for session in Session.objects.all():
    if session.get_decoded().get("_auth_user_id") == uid:
        session.delete()
"""


@pytest.fixture(scope="module")
def stack(redis_server):
    """One stack for every example (send limits lifted for the burst: REST's and the
    socket's frame rate, which a listening client's sends use)."""
    index = next(_redis_db_index)
    redis_server.flushdb(index)
    env = {**BULK_LIMITS, "WS_RATE_PER_SECOND": "100000", "WS_RATE_BURST": "100000"}
    stack = DjangoStack(1, redis_url=redis_server.url_for(index), env=env).start()
    try:
        yield stack
    finally:
        stack.stop()


_taken = iter(range(10_000))


def keys() -> protocol.DeviceKeys:
    """Distinct device keys for this module's stack (one database for all its tests)."""
    index = next(_taken)
    while len(_key_pool) <= index:
        _key_pool.append(fresh_device_keys())
    return _key_pool[index]


async def person(base_url: str, name: str) -> ChatClient:
    session = ChatSession(base_url)
    user = await session.register(name, PASSWORD)
    device_keys, _, device = await setup_first_device(
        session, name="test", passphrase="p", keys=keys(), iterations=100_000
    )
    return ChatClient(
        session, device_keys, user_id=user["id"], username=name, device_id=device["id"]
    )


async def bot_env(base_url: str, name: str, home: Path) -> dict[str, str]:
    """A bot account with its first device; the environment its example reads."""
    session = ChatSession(base_url)
    await session.register(name, PASSWORD)
    _, record, _ = await setup_first_device(
        session, name="bot", passphrase=PASSPHRASE, keys=keys(), iterations=100_000
    )
    await session.aclose()
    home.mkdir(parents=True)
    key_file = home / "keystore.json"
    key_file.write_text(__import__("json").dumps(record))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "CHAT_"))}
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "CHAT_SERVER": base_url,
        "BOT_USERNAME": name,
        "BOT_PASSWORD": PASSWORD,
        "BOT_KEY_FILE": str(key_file),
        "BOT_PASSPHRASE": PASSPHRASE,
    }


class Bot:
    """An example in its own process; its log lines (stderr) are awaited."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, script: str, env: dict[str, str], *args: str) -> Bot:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLES / script),
            *args,
            env=env,
            cwd=str(ROOT),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.lines.append(line.decode(errors="replace").rstrip())
            self.changed.set()
        self.changed.set()

    async def line(self, pattern: str, *, after: int = 0, timeout: float = 60) -> int:
        """The index of the first log line from ``after`` on that contains ``pattern``."""
        async with asyncio.timeout(timeout):
            while True:
                for i in range(after, len(self.lines)):
                    if pattern in self.lines[i]:
                        return i
                if self.reader.done():
                    raise AssertionError(f"{pattern!r} never came:\n" + "\n".join(self.lines))
                self.changed.clear()
                await self.changed.wait()

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """SIGTERM (what systemd sends; or Ctrl-C's SIGINT) and the exit status."""
        if self.process.returncode is None:
            self.process.send_signal(sig)
        return await self.wait()

    async def wait(self, timeout: float = 60) -> int:
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
            await self.reader
        assert "Traceback" not in "\n".join(self.lines), "\n".join(self.lines)
        return code


class Inbox:
    """A person's incoming messages, listened to in a task."""

    def __init__(self, client: ChatClient) -> None:
        self.messages: list[Message] = []
        self.marks: list[ReadMark] = []
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._run(client))

    async def _run(self, client: ChatClient) -> None:
        async for event in client.events():
            if isinstance(event, Message) and not event.own:
                self.messages.append(event)
            elif isinstance(event, ReadMark):
                self.marks.append(event)
            self.changed.set()

    async def mark(self, user: str, up_to: int, timeout: float = 60) -> None:
        async with asyncio.timeout(timeout):
            while not any(m.user == user and m.up_to >= up_to for m in self.marks):
                self.changed.clear()
                await self.changed.wait()

    async def wait(self, test: Callable[[Message], bool], timeout: float = 60) -> Message:
        async with asyncio.timeout(timeout):
            while True:
                for message in self.messages:
                    if test(message):
                        return message
                self.changed.clear()
                await self.changed.wait()

    async def text(self, text: str, timeout: float = 60) -> Message:
        return await self.wait(lambda m: m.text == text, timeout)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.mark.timeout(300)  # a scenario of two bot starts, a restart and a manage.py run
async def test_echo_bot_long_text_restart_expiry_and_downtime(stack, tmp_path, capsys):
    alice = await person(stack.base_url, "alice")
    env = await bot_env(stack.base_url, "echobot", tmp_path / "echobot")
    bot = await Bot.start("echo_bot.py", env)
    inbox = Inbox(alice)
    try:
        await bot.line("echo_bot: connected")
        cid = (await alice.conversation("echobot"))["id"]
        trips = []
        for i in range(10):
            started = time.perf_counter()
            await alice.send_text(cid, f"ping {i}")
            reply = await inbox.text(f"echo: ping {i}")
            trips.append(time.perf_counter() - started)
        assert reply.reply_to is not None and reply.reply_to["sender_id"] == alice.user_id

        long_text = ("0123456789abcdé\u05d0 " * 1000)[:16_000]
        await alice.send_text(cid, long_text)
        last = await inbox.wait(lambda m: (m.text or "").startswith("echo (2/2): "))
        parts = [m.text for m in inbox.messages if (m.text or "").startswith("echo (")]
        assert [p.split(": ", 1)[0] for p in parts] == ["echo (1/2)", "echo (2/2)"]
        assert "".join(p.split(": ", 1)[1] for p in parts) == long_text
        assert last.verified

        mark = len(bot.lines)
        await asyncio.to_thread(stack.restart)
        await bot.line("reconnected", after=mark)
        await alice.send_text(cid, "after the restart")
        await inbox.text("echo: after the restart")

        mark = len(bot.lines)
        await asyncio.to_thread(stack.manage, "shell", "-c", END_SESSIONS.format(name="echobot"))
        await bot.line("logged in again", after=mark)
        await bot.line("reconnected", after=mark)
        await alice.send_text(cid, "after the session ended")
        await inbox.text("echo: after the session ended")

        assert await bot.stop() == 0
        await alice.send_text(cid, "while it was down")
        bot = await Bot.start("echo_bot.py", env)
        await inbox.text("echo: while it was down")
        last = await alice.send_text(cid, "last")
        await inbox.text("echo: last")
        echoes = [m.text for m in inbox.messages]
        assert echoes.count("echo: while it was down") == 1
        assert echoes.count("echo: ping 0") == 1  # nothing answered twice after the restart
        # The bot marks what it answered as read: nothing is left unread for it.
        await inbox.mark("echobot", last["seq"])
        assert await bot.stop() == 0
        session = ChatSession(stack.base_url)
        await session.login("echobot", PASSWORD)
        assert [c["unread"] for c in await session.conversations()] == [0]
        await session.aclose()
    finally:
        await bot.stop()
        await inbox.stop()
    with capsys.disabled():
        print(f"\necho round trip: median {statistics.median(trips) * 1000:.0f} ms of 10")


async def test_command_bot_answers_its_commands(stack, tmp_path):
    carol = await person(stack.base_url, "carol")
    env = await bot_env(stack.base_url, "cmdbot", tmp_path / "cmdbot")
    bot = await Bot.start("command_bot.py", env)
    inbox = Inbox(carol)
    try:
        await bot.line("command_bot: connected")
        cid = (await carol.conversation("cmdbot"))["id"]
        for text in ("/help", "/roll 3d6", "hello, no command", "/nope", "/whoami"):
            await carol.send_text(cid, text)
        await inbox.wait(lambda m: (m.text or "").startswith("you are carol"))
        answers = [m.text or "" for m in inbox.messages]
        assert answers[0].startswith("commands: /help")
        assert re.fullmatch(r"3d6: \d \+ \d \+ \d = \d+", answers[1]), answers
        assert answers[2].startswith("unknown command")
        assert answers[3] == f"you are carol (user {carol.user_id})"
        assert len(answers) == 4  # nothing for the plain text
    finally:
        assert await bot.stop(signal.SIGINT) == 130  # Ctrl-C: no traceback either
        await inbox.stop()


async def test_standup_bot_collects_a_groups_answers_and_ends(stack, tmp_path):
    dave = await person(stack.base_url, "dave")
    erin = await person(stack.base_url, "erin")
    env = await bot_env(stack.base_url, "standupbot", tmp_path / "standupbot")
    group = await dave.create_group("team", ["erin", "standupbot"])
    inbox = Inbox(dave)
    bot = await Bot.start("standup_bot.py", env, str(group["id"]), "--wait", "2")
    try:
        question = await inbox.wait(lambda m: (m.text or "").startswith("Standup!"))
        await question.reply("shipped the SDK")
        await erin.send_text(group["id"], "/standup reviewing, no blockers")
        assert await bot.wait(timeout=120) == 0
        summary = await inbox.wait(lambda m: (m.text or "").startswith("Standup summary"))
        assert summary.text == (
            "Standup summary (2 of 2 answered):\n"
            "- dave: shipped the SDK\n"
            "- erin: reviewing, no blockers"
        )
        assert any(m.kind == "reaction" and m.emoji == "👍" for m in inbox.messages)
    finally:
        await bot.stop()
        await inbox.stop()


def test_the_systemd_unit_runs_the_echo_bot_with_its_environment():
    unit = (EXAMPLES / "echo-bot.service").read_text(encoding="utf-8")
    service = unit.split("[Service]", 1)[1].split("\n[", 1)[0]
    settings = dict(
        line.split("=", 1) for line in service.splitlines() if "=" in line and line[0] != "#"
    )
    assert settings["ExecStart"].endswith("/echo_bot.py")
    assert settings["KillSignal"] == "SIGTERM" and settings["Restart"] == "on-failure"
    source = (EXAMPLES / "echo_bot.py").read_text(encoding="utf-8")
    needed = set(re.findall(r'os\.environ\["([A-Z_]+)"\]', source))
    given = {"BOT_KEY_FILE"} | set(re.findall(r"\b(BOT_[A-Z]+|CHAT_SERVER)\b", unit))
    assert needed and needed <= given


@pytest.mark.skipif(not os.environ.get("CHAT_SDK_FIGURES"), reason="figures: CHAT_SDK_FIGURES=1")
async def test_figures_a_200_send_burst_through_the_echo_bot(stack, tmp_path, capsys):
    frank = await person(stack.base_url, "frank")
    env = await bot_env(stack.base_url, "burstbot", tmp_path / "burstbot")
    bot = await Bot.start("echo_bot.py", env)
    inbox = Inbox(frank)
    try:
        await bot.line("echo_bot: connected")
        cid = (await frank.conversation("burstbot"))["id"]
        started = time.perf_counter()
        for i in range(200):
            await frank.send_text(cid, f"burst {i}")
        sent = time.perf_counter() - started
        await inbox.text("echo: burst 199", timeout=300)
        echoed = time.perf_counter() - started
        texts = [m.text for m in inbox.messages]
        assert texts == [f"echo: burst {i}" for i in range(200)]
    finally:
        assert await bot.stop() == 0
        await inbox.stop()
    with capsys.disabled():
        print(f"\n200 sends: {sent:.1f} s; all 200 echoes back after {echoed:.1f} s")


@pytest.mark.timeout(240)
async def test_the_sdk_api_typed_objects_handlers_and_relogin(stack, caplog):
    """What the examples stand on: typed conversations, sends that do not fetch the list
    again, the handler layer (a failing handler does not end it), typing and read
    events, reply/react/edit/delete, and re-login over HTTP with a held password."""
    gina = await person(stack.base_url, "gina")
    hank = await person(stack.base_url, "hank")
    conversation = await gina.get_conversation("hank")
    assert isinstance(conversation, Conversation) and conversation.kind == "direct"
    assert set(conversation.members) == {"gina", "hank"}
    assert conversation.request is False  # gina started it
    # For hank it is a message request (PROTOCOL §6): typing and read frames cross only
    # once he accepts it.
    accepted = await hank.accept_request(conversation.id)
    assert accepted["request"] is False

    seen: list[object] = []
    changed = asyncio.Event()

    def note(item: object) -> None:
        seen.append(item)
        changed.set()

    async def until(test: Callable[[object], bool]) -> object:
        async with asyncio.timeout(60):
            while True:
                for item in seen:
                    if test(item):
                        return item
                changed.clear()
                await changed.wait()

    @hank.on_message
    async def on_message(message: Message) -> None:
        if message.text == "boom":
            raise RuntimeError("a bug in a handler")
        note(message)

    @hank.command("ping")
    async def ping(message: Message, args: str) -> None:
        note(("ping", args))
        note(("stored", await message.reply(f"pong {args}")))

    @hank.on(Typing)
    @hank.on(ReadMark)
    @hank.on(Status)
    async def on_event(event: object) -> None:
        note(event)

    running = asyncio.create_task(hank.run())
    try:
        await until(lambda e: isinstance(e, Status) and e.state == "connected")
        calls = 0
        fetch = hank.session.conversations

        async def counted() -> list[dict]:
            nonlocal calls
            calls += 1
            return await fetch()

        hank.session.conversations = counted  # type: ignore[method-assign]
        posts = 0
        post = hank.session.send_message

        async def counted_post(*args: object, **kwargs: object) -> dict:
            nonlocal posts
            posts += 1
            return await post(*args, **kwargs)  # type: ignore[arg-type]

        hank.session.send_message = counted_post  # type: ignore[method-assign]
        await gina.typing(conversation.id)
        await until(lambda e: isinstance(e, Typing) and e.user == "gina")
        for text in ("boom", "/ping now", "/ping again", "hello"):
            await gina.send_text(conversation.id, text)
        hello = await until(lambda e: isinstance(e, Message) and e.text == "hello")
        assert ("ping", "now") in seen and ("ping", "again") in seen
        assert "a bug in a handler" in caplog.text  # logged, and the bot went on
        assert calls == 0  # a listening client's replies fetch no conversation list
        # ... and go on its socket, not as POSTs; what send returns is the stored message.
        assert posts == 0
        replies = [item[1] for item in seen if isinstance(item, tuple) and item[0] == "stored"]
        stored_page = (await hank.session.history(conversation.id, limit=50))["messages"]
        assert replies == [m for m in stored_page if m["id"] in {r["id"] for r in replies}]

        # An ack lost on the way (the frame was stored): the same client_msg_id over
        # HTTP is answered with that message, stored once.
        exchange = ChatSocket.exchange

        async def ack_lost(socket: ChatSocket, frame: dict, msg_id: str, timeout: float) -> dict:
            await exchange(socket, frame, msg_id, timeout)
            raise TimeoutError

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ChatSocket, "exchange", ack_lost)
            again = await hank.send_text(conversation.id, "ack lost")
        assert posts == 1
        stored_page = (await hank.session.history(conversation.id, limit=50))["messages"]
        assert [m["id"] for m in stored_page if m["client_msg_id"] == again["client_msg_id"]] == [
            again["id"]
        ]

        assert isinstance(hello, Message)
        await hello.react("🎉")
        page, _ = await gina.history(conversation.id, limit=20)
        theirs = next(m for m in page if not m.own and m.text == "pong now")
        assert [m.text for m in page if not m.own][:2] == ["pong now", "pong again"]
        own_hello = next(m for m in page if m.own and m.text == "hello")
        await own_hello.edit("hello, edited")
        await until(lambda e: isinstance(e, Message) and e.kind == "edit")
        edit = next(m for m in seen if isinstance(m, Message) and m.kind == "edit")
        assert edit.to == own_hello.ref and edit.content["text"] == "hello, edited"
        with pytest.raises(ChatError):
            await theirs.edit("not mine")
        await own_hello.delete()
        await until(lambda e: isinstance(e, Message) and e.kind == "delete")

        up_to = await hank.mark_read(conversation.id)
        await until(lambda e: isinstance(e, ReadMark) and e.user == "hank" and e.up_to == up_to)
        assert [c.unread for c in await hank.list_conversations()] == [0]
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    # The session ends on the server: without the password the next call is refused,
    # with it the client logs in again once and goes on.
    await asyncio.to_thread(stack.manage, "shell", "-c", END_SESSIONS.format(name="gina"))
    with pytest.raises(ChatApiError) as refused:
        await gina.session.search_users("han")
    assert refused.value.code == "not_authenticated"
    gina.session.keep_logged_in("gina", PASSWORD)
    stored = await gina.send_text(conversation.id, "after the session ended")
    assert stored["seq"] > 0 and gina.session.relogins == 1
