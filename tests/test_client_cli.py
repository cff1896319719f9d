"""The `chat-client` command against a live daphne + Redis, each command a subprocess.

`listen` runs as a long-lived subprocess; one test restarts the server under it and
checks that every message arrives exactly once, in order. Two CLI profiles of one user
link a device (code, approval, history), people compare safety numbers and accept an
identity change, and a group changes its signed roster.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chatclient import keystore
from chatclient.display import human_size

pytestmark = pytest.mark.processes

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "chatclient.cli"]


class Cli:
    """Runs `chat-client` for one profile directory against one server."""

    def __init__(self, base_url: str, directory: Path, *, passphrase: str, password: str):
        self.base_url = base_url
        self.dir = directory
        self.passphrase = passphrase
        self.password = password

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CHAT_"))}
        env.update(
            CHAT_SERVER=self.base_url,
            CHAT_KEY_BITS="2048",
            CHAT_KDF_ITERATIONS="100000",  # the keystore's minimum: each command unlocks faster
            CHAT_PASSPHRASE=self.passphrase,
            CHAT_PASSWORD=self.password,
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def argv(self, *args: str) -> list[str]:
        return [*CLI, "--config-dir", str(self.dir), *args]

    def run(self, *args: str, stdin: str = "", ok: bool = True, cwd: Path = REPO, **env: str):
        done = subprocess.run(
            self.argv(*args),
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(**env),
            cwd=cwd,
            timeout=60,
        )
        if ok:
            assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def fails(self, *args: str, **env: str) -> str:
        """Run a command that must fail; returns its one error line."""
        done = self.run(*args, ok=False, **env)
        assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("chat-client: error: "), done.stderr
        return lines[0].removeprefix("chat-client: error: ")

    def start(self, *args: str) -> subprocess.Popen:
        """A command left running (its stdout and stderr are pipes)."""
        return subprocess.Popen(
            self.argv(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.env(),
            cwd=REPO,
        )

    def listen(self, *args: str) -> Listener:
        proc = subprocess.Popen(
            self.argv("listen", "--json", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.env(),
            cwd=REPO,
        )
        return Listener(proc)


class Listener:
    """A running `chat-client listen --json`: its JSON lines arrive on a queue."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self.stderr: list[str] = []
        self.readers = [
            threading.Thread(target=self._read_out, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read_out(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)

    def wait_for(self, predicate, timeout: float = 60.0) -> dict:
        """The next event matching ``predicate`` (all events are kept in ``events``)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.proc.poll() is not None:
                raise AssertionError(
                    f"no matching event; exit {self.proc.poll()}; seen {self.events}; "
                    f"stderr {''.join(self.stderr)}"
                )
            try:
                event = self.lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            self.events.append(event)
            if predicate(event):
                return event

    def connected(self, timeout: float = 60.0) -> dict:
        return self.wait_for(
            lambda e: e == {"event": "status", "state": "connected", "detail": ""}, timeout
        )

    def messages(self) -> list[dict]:
        return [e for e in self.events if e["event"] == "message"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for reader in self.readers:
            reader.join(10)


@pytest.fixture
def server(live_stack):
    return live_stack()


@pytest.fixture
def people(server, tmp_path):
    """alice and bob, registered, each with a device set up (the two side by side)."""

    def make(name: str) -> Cli:
        cli = Cli(
            server.base_url, tmp_path / name, passphrase=f"{name} pass", password=f"{name}-pw-Xy7!q"
        )
        assert "registered and logged in" in cli.run("register", name).stdout
        out = cli.run("device", "setup", "--name", f"{name} cli").stdout
        assert "registered; key file" in out
        return cli

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(("alice", "bob"), pool.map(make, ("alice", "bob")), strict=True))


def test_files_are_private_and_key_file_is_protocol_section_3(people):
    alice = people["alice"]
    assert stat.S_IMODE(alice.dir.stat().st_mode) == 0o700
    for name in ("session.json", "keystore.json"):
        assert stat.S_IMODE((alice.dir / name).stat().st_mode) == 0o600, name
    record = json.loads((alice.dir / "keystore.json").read_text())
    assert set(record) == {
        "v", "kind", "user_id", "username", "device_id", "enc_kid", "sig_kid", "id_kid", "kdf",
        "iv", "ct",
    }  # fmt: skip
    assert record["kind"] == "e2ee-chat-keystore" and record["username"] == "alice"
    assert record["v"] == 2
    assert record["kdf"]["name"] == "PBKDF2-SHA256" and record["kdf"]["iterations"] == 100_000
    keys = keystore.unlock_keystore(record, "alice pass")
    assert keys.enc_private.size_in_bits() == 2048 and keys.id_kid == record["id_kid"]
    with pytest.raises(keystore.WrongPassphrase):
        keystore.unlock_keystore(record, "other")


def test_send_history_and_listen(people, tmp_path):
    alice, bob = people["alice"], people["bob"]
    listener = bob.listen()
    try:
        listener.connected()
        assert alice.run("send", "bob", "hello bob").stdout.startswith("sent [")
        alice.run("send", "@bob", stdin="from stdin\nline two\n")
        first = listener.wait_for(lambda e: e["event"] == "message")
        second = listener.wait_for(lambda e: e["event"] == "message")
        assert (first["text"], first["status"], first["sender"]) == ("hello bob", "ok", "alice")
        assert second["text"] == "from stdin\nline two"
        assert (first["seq"], second["seq"]) == (1, 2)
        # alice never heard from bob: a message request for him (§6), marked as such
        assert first["request"] is True and second["request"] is True
        cid = str(first["conversation"])
        assert bob.run("requests").stdout.startswith(f"{cid}  alice wants to message you")
        bob.run("block", "alice")
        assert alice.fails("send", "bob", "let me in").startswith("forbidden: ")
        bob.run("unblock", "alice")
        assert bob.run("accept", cid).stdout == f"accepted: conversation {cid}\n"
        assert bob.run("requests").stdout == "no message requests\n"
        # bob answers with the conversation id; alice reads the history.
        bob.run("send", str(first["conversation"]), "hi alice")
        own = listener.wait_for(lambda e: e["event"] == "message" and e["own"])
        assert own["text"] == "hi alice" and "request" not in own
    finally:
        listener.stop()
    history = alice.run("history", "bob").stdout.splitlines()
    assert [line.split("] ", 1)[-1] for line in history] == [
        "alice: hello bob",
        "alice: from stdin",
        "    line two",
        "bob: hi alice",
    ]
    listing = alice.run("conversations").stdout
    assert "direct with bob" in listing and "last #3" in listing
    state = json.loads((bob.dir / "state.json").read_text())
    assert state["cursors"] == {str(first["conversation"]): 3}
    assert stat.S_IMODE((bob.dir / "state.json").stat().st_mode) == 0o600
    # A later `listen` continues from the saved cursor: only what came meanwhile.
    alice.run("send", "bob", "while you were away")
    again = bob.listen()
    try:
        again.wait_for(lambda e: e.get("text") == "while you were away")
        again.connected()
        # Ctrl-C once it says it is listening: exit status 130, no traceback.
        again.proc.send_signal(signal.SIGINT)
        assert again.proc.wait(30) == 130
    finally:
        again.stop()
    assert [m["seq"] for m in again.messages()] == [4]
    assert "Traceback" not in "".join(again.stderr), again.stderr
    send_a_photo_history_and_download(alice, bob, tmp_path)


def test_listen_survives_a_server_restart_without_loss_or_repeats(server, people):
    alice, bob = people["alice"], people["bob"]
    listener = bob.listen()
    expected = []

    def send(text: str) -> None:
        alice.run("send", "bob", text)
        expected.append(text)

    try:
        listener.connected()
        for i in range(3):
            send(f"before {i}")
        listener.wait_for(lambda e: e.get("text") == "before 2")
        server.restart()
        # Sent while the listener is still backing off: these must come by sync.
        for i in range(3):
            send(f"during {i}")
        listener.wait_for(lambda e: e["event"] == "status" and e["state"] == "disconnected")
        listener.connected(timeout=60)
        for i in range(3):
            send(f"after {i}")
        # A last message: any repeat of an earlier one would come before it (seq order).
        send("the end")
        listener.wait_for(lambda e: e.get("text") == "the end", timeout=60)
    finally:
        listener.stop()
    messages = listener.messages()
    assert [m["text"] for m in messages] == expected
    assert [m["seq"] for m in messages] == list(range(1, len(expected) + 1))
    assert len({m["id"] for m in messages}) == len(expected)
    assert all(m["status"] == "ok" for m in messages)


def link(new: Cli, approver: Cli, *approve_args: str) -> tuple[str, str]:
    """`device link` on ``new`` and `device approve --code` on ``approver``; returns both
    outputs. The code is the one the new device prints."""
    proc = new.start("device", "link", "--name", "second")
    try:
        line = proc.stdout.readline()
        assert line.startswith("link code: "), (line, proc.stderr.read())
        code = line.removeprefix("link code: ").strip()
        approved = approver.run("device", "approve", "--code", code, *approve_args).stdout
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, (out, err)
    return line + out, approved


def test_link_a_device_with_its_history_and_nobody_is_warned(people, tmp_path, server):
    alice, bob = people["alice"], people["bob"]
    alice.run("send", "bob", "one")
    bob.run("send", "alice", "two")
    before = alice.run("safety-number", "bob").stdout
    bob2 = Cli(server.base_url, tmp_path / "bob2", passphrase="bob second", password=bob.password)
    bob2.run("login", "bob")
    assert "no pending link request" in bob.fails("device", "approve", "--code", "0000")
    linked, approved = link(bob2, bob)
    assert "linked: device" in linked and "adopted the approving device's trust" in linked
    assert "approved request" in approved and "the keys of 2 messages" in approved
    # The new device reads the history; alice's next message reaches both without warning.
    history = bob2.run("history", "alice").stdout.splitlines()
    assert [line.split("] ", 1)[-1] for line in history] == ["alice: one", "bob: two"]
    done = alice.run("send", "bob", "three")
    assert done.stderr == ""
    assert bob2.run("history", "alice").stdout.splitlines()[-1].endswith("alice: three")
    assert alice.run("safety-number", "bob").stdout == before
    record = json.loads((bob2.dir / "keystore.json").read_text())
    bob_record = json.loads((bob.dir / "keystore.json").read_text())
    assert record["v"] == 2 and record["id_kid"] == bob_record["id_kid"]
    assert "NO CERTIFICATE" not in bob.run("device", "list").stdout
    assert bob2.run("safety-number", "alice").stdout == bob.run("safety-number", "alice").stdout


def test_safety_numbers_a_reset_and_identity_accept(people, tmp_path, server):
    alice, bob = people["alice"], people["bob"]
    alice.run("send", "bob", "hi")
    number = alice.run("safety-number", "bob").stdout.splitlines()
    assert number[0] == "safety number with bob (not verified):"
    groups = " ".join(number[1:3]).split()
    assert len(groups) == 12 and all(len(g) == 5 and g.isdigit() for g in groups)
    assert bob.run("safety-number", "alice").stdout.splitlines()[1:3] == number[1:3]
    assert "marked as verified" in alice.run("safety-number", "bob", "--verify").stdout
    # bob loses his device and resets: alice's client blocks until she accepts.
    fresh = Cli(server.base_url, tmp_path / "bob-new", passphrase="new", password=bob.password)
    fresh.run("login", "bob")
    assert "identity reset" in fresh.run("device", "setup", "--reset").stdout
    paused = alice.fails("send", "bob", "are you there?")
    assert paused.startswith("not sent: sending to conversation") and "bob" in paused
    shown = alice.run("safety-number", "bob").stdout
    assert "identity key changed; the new safety number is:" in shown
    accepted = alice.run("identity", "accept", "bob").stdout
    assert accepted.startswith("accepted bob's new identity key")
    assert accepted.splitlines()[1:3] != number[1:3]
    alice.run("send", "bob", "welcome back")
    assert fresh.run("history", "alice").stdout.splitlines()[-1].endswith("alice: welcome back")


def test_groups_with_signed_rosters(people, tmp_path, server):
    alice, bob = people["alice"], people["bob"]
    carol = Cli(server.base_url, tmp_path / "carol", passphrase="carol", password="carol-pw-Xy7!q")
    carol.run("register", "carol")
    carol.run("device", "setup")
    created = alice.run("group", "create", "plans", "bob").stdout
    assert created.splitlines()[-1].startswith("group ")
    group = created.splitlines()[-1].split()[1]
    listener = bob.listen()
    try:
        listener.connected()
        assert "you added carol" in alice.run("group", "add", group, "carol").stdout
        alice.run("send", group, "welcome carol")
        carol.run("group", "title", group, "new plans")
        assert "you left" in carol.run("group", "leave", group).stdout
        alice.run("group", "remove", group, "bob")
        listener.wait_for(lambda e: e["event"] == "roster" and e["op"] == "remove")
    finally:
        listener.stop()
    roster = [e["text"] for e in listener.events if e["event"] == "roster"]
    assert roster[-4:] == [
        "alice added carol",
        "title changed to “new plans” by carol",
        "carol left",
        "alice removed you",
    ]
    assert [m["text"] for m in listener.messages()] == ["welcome carol"]
    assert bob.fails("send", group, "still here?").endswith(f"not a member of conversation {group}")
    assert "group 'new plans'" in alice.run("conversations").stdout


def test_device_import_of_a_key_file(people, tmp_path, server):
    bob = people["bob"]
    people["alice"].run("send", "bob", "for the imported key")
    exported = tmp_path / "bob-key.json"
    bob.run("device", "export", str(exported))
    other = Cli(server.base_url, tmp_path / "bob-import", passphrase="wrong", password=bob.password)
    other.run("login", "bob")
    assert other.fails("device", "import", str(exported)) == "wrong passphrase for the key file"
    other.passphrase = bob.passphrase
    assert "imported device" in other.run("device", "import", str(exported)).stdout
    assert other.run("history", "alice").stdout.strip().endswith("alice: for the imported key")


def test_one_line_errors(people, tmp_path, server):
    alice = people["alice"]
    assert alice.fails("send", "nobody", "hi") == "unknown user: nobody"
    assert alice.fails("fingerprints", "nobody") == "unknown user: nobody"
    assert (
        alice.fails("history", "bob", CHAT_PASSPHRASE="nope") == "wrong passphrase for the key file"
    )
    down = alice.fails("conversations", CHAT_SERVER="http://127.0.0.1:9")
    assert down.startswith("cannot reach the server at http://127.0.0.1:9")
    fresh = Cli(server.base_url, tmp_path / "fresh", passphrase="x", password="y")
    assert fresh.fails("conversations").startswith("not logged in")
    assert fresh.fails("send", "bob", "x").startswith("this profile has no device key yet")
    assert fresh.fails("login", "alice") == "wrong username or password"
    weak = alice.fails("device", "setup", "--force", CHAT_KDF_ITERATIONS="99999")
    assert weak == "CHAT_KDF_ITERATIONS must be 100000..10000000"
    assert alice.run("send", "bob", "still the same key").returncode == 0
    # `history | head`: a reader that went away ends the command without a traceback.
    piped = subprocess.Popen(
        alice.argv("history", "bob"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=alice.env(),
        cwd=REPO,
    )
    piped.stdout.close()  # before the command writes anything
    assert piped.stderr.read() == "" and piped.wait(60) == 1
    # The server's reason for refusing a password; a person without a device.
    carol = Cli(server.base_url, tmp_path / "carol", passphrase="c", password="carol1234")
    assert "too similar to the username" in carol.fails("register", "carol")
    carol.password = "carol-pw-Xy7!q"
    carol.run("register", "carol")
    warned = alice.run("send", "carol", "anyone there?").stderr
    assert warned.startswith("!! carol has no active device: this message was not encrypted")
    assert "carol  identity (none: not upgraded)\n    no active device" in (
        alice.run("fingerprints", "carol").stdout
    )
    alice.run("logout")
    assert alice.fails("send", "bob", "hi").startswith("not logged in")


def test_listen_ends_with_one_line_when_its_device_is_revoked(people):
    alice, bob = people["alice"], people["bob"]
    assert alice.fails("send", "bob", "x" * 16001).startswith("too_large")
    device_id = json.loads((bob.dir / "keystore.json").read_text())["device_id"]
    listener = bob.listen()
    try:
        listener.connected()
        bob.run("device", "revoke", str(device_id))
        assert listener.proc.wait(30) == 1
    finally:
        listener.stop()
    stderr = "".join(listener.stderr).strip().splitlines()
    revoked = f"device {device_id} of bob is revoked: this key file can no longer be used"
    assert stderr[-1].startswith(f"chat-client: error: {revoked}")
    assert bob.fails("send", "alice", "hi").startswith(revoked)  # said before anything else


def send_a_photo_history_and_download(alice: Cli, bob: Cli, tmp_path: Path) -> None:
    """`send --file` with a caption, the file in `history`, `download` by id to its own
    name in the current directory."""
    from PIL import Image

    photo = tmp_path / "beach day.png"
    Image.new("RGB", (400, 300), (30, 120, 200)).save(photo)
    out = alice.run("send", "bob", "--file", str(photo), "--caption", "look!").stdout
    assert out.startswith("sent [") and "(file beach day.png," in out
    message_id = int(out.split(" id ", 1)[1].split()[0])
    line = bob.run("history", "alice").stdout.strip().splitlines()[-1]
    size = human_size(photo.stat().st_size)
    assert line.endswith(f"alice: [file] beach day.png ({size}, image/png; id {message_id}) look!")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    saved = bob.run("download", str(message_id), cwd=downloads)
    assert saved.stdout.startswith(f"saved {downloads / 'beach day.png'} (")
    assert saved.stderr == ""  # no progress bar when stderr is not a terminal
    assert (downloads / "beach day.png").read_bytes() == photo.read_bytes()
