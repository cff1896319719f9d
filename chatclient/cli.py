"""``chat-client``: the terminal client of PROTOCOL.md (see docs/client.md).

Every failure ends with one ``chat-client: error: ...`` line on stderr and exit status 1
(2 for usage errors, 130 when interrupted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import signal
import socket
import sys
from pathlib import Path

from . import keystore, protocol
from .client import ChatClient
from .config import Profile, default_config_dir, read_json, write_json
from .directory import DeviceDirectory, fingerprint
from .display import as_json, clean, event_line
from .errors import ChatApiError, ChatError, ServerUnreachable, SocketClosed
from .events import IncomingMessage, Status
from .session import ChatSession

SERVER_ENV = "CHAT_SERVER"
PASSPHRASE_ENV = "CHAT_PASSPHRASE"
PASSWORD_ENV = "CHAT_PASSWORD"
KEY_BITS_ENV = "CHAT_KEY_BITS"


class CliError(Exception):
    """A failure to report as one line."""


# --- input ---------------------------------------------------------------------------


def read_secret(env: str, prompt: str, *, confirm: bool = False) -> str:
    """A secret from ``$env`` if set (non-interactive use), else getpass (twice if ``confirm``)."""
    if os.environ.get(env):
        return os.environ[env]
    try:
        first = getpass.getpass(prompt)
        if confirm and getpass.getpass("Again: ") != first:
            raise CliError("the two entries do not match")
    except EOFError as exc:
        raise CliError(f"no terminal to ask for it: set {env}") from exc
    if not first:
        raise CliError("empty input")
    return first


def parse_target(value: str) -> int | str:
    """``7`` or ``#7``: conversation 7; ``bob`` or ``@bob``: the direct conversation with bob."""
    if value.startswith("@"):
        return value[1:]
    digits = value.removeprefix("#")
    if digits.isdigit():
        return int(digits)
    return value


# --- context ---------------------------------------------------------------------------


class Context:
    """Parsed arguments plus the profile's files."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.profile = Profile(Path(args.config_dir) if args.config_dir else default_config_dir())

    def server(self) -> str:
        saved = self.profile.load_session() or {}
        url = self.args.server or os.environ.get(SERVER_ENV) or saved.get("server")
        if not url:
            raise CliError(f"no server: pass --server URL or set {SERVER_ENV}")
        return url

    def session(self) -> ChatSession:
        """The saved session if it is for this server, else a fresh one."""
        url = self.server()
        saved = self.profile.load_session()
        try:
            if saved and ChatSession(url).base_url == saved.get("server"):
                return ChatSession.from_state(saved)
            return ChatSession(url)
        except ValueError as exc:
            raise CliError(str(exc)) from exc

    def save(self, session: ChatSession) -> None:
        self.profile.save_session(session.export_state())

    def keystore(self) -> dict:
        record = self.profile.load_keystore()
        if record is None:
            raise CliError(
                "this profile has no device key yet: run `chat-client device setup` "
                "or `chat-client device import FILE`"
            )
        return record

    async def client(self) -> ChatClient:
        """The unlocked device, logged in as the key file's user; state persisted as it goes."""
        record = self.keystore()
        session = self.session()
        passphrase = read_secret(PASSPHRASE_ENV, "Key passphrase: ")
        client = await ChatClient.unlock(session, record, passphrase)
        state = self.profile.load_state(client.device_id)
        client.cursors.update({int(k): v for k, v in state["cursors"].items()})
        client.directory.known.update(state["known_devices"])
        client.on_cursor = lambda _c, _s: self.save_state(client)
        await client.check_login()
        return client

    def save_state(self, client: ChatClient) -> None:
        self.profile.save_state(client.device_id, client.cursors, client.directory.known)


def say(text: str = "") -> None:
    print(text, flush=True)


def warn(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def report_notices(client: ChatClient) -> None:
    for change in client.pop_notices():
        warn(event_line(change))


# --- commands: account -----------------------------------------------------------------


async def cmd_register(ctx: Context) -> None:
    session = ctx.session()
    password = read_secret(PASSWORD_ENV, "New password: ", confirm=True)
    user = await session.register(ctx.args.username, password)
    ctx.save(session)
    say(f"registered and logged in as {clean(user['username'])} (user {user['id']})")


async def cmd_login(ctx: Context) -> None:
    session = ctx.session()
    password = read_secret(PASSWORD_ENV, "Password: ")
    user = await session.login(ctx.args.username, password)
    ctx.save(session)
    say(f"logged in as {clean(user['username'])} (user {user['id']})")


async def cmd_logout(ctx: Context) -> None:
    session = ctx.session()
    await session.logout()
    ctx.save(session)
    say("logged out")


async def require_user(session: ChatSession) -> dict:
    user = await session.get_session()
    if user is None:
        raise ChatApiError(401, "not_authenticated", "not logged in")
    return user


# --- commands: device ------------------------------------------------------------------


def key_bits(args: argparse.Namespace) -> int:
    bits = args.key_bits or int(os.environ.get(KEY_BITS_ENV) or protocol.DEFAULT_KEY_BITS)
    if bits not in protocol.ALLOWED_KEY_BITS:
        raise CliError(f"key size must be one of {protocol.ALLOWED_KEY_BITS}")
    return bits


async def cmd_device_setup(ctx: Context) -> None:
    if ctx.profile.load_keystore() is not None and not ctx.args.force:
        raise CliError(f"a key file exists already: {ctx.profile.keystore_path} (use --force)")
    session = ctx.session()
    user = await require_user(session)
    passphrase = read_secret(PASSPHRASE_ENV, "New key passphrase: ", confirm=True)
    bits = key_bits(ctx.args)
    keys = await asyncio.to_thread(protocol.generate_device_keys, bits)
    name = ctx.args.name or f"chat-client on {socket.gethostname()}"[:100]
    device = await session.register_device(
        name,
        protocol.b64encode(keys.enc_spki),
        protocol.b64encode(keys.sig_spki),
        protocol.sign_device_proof(keys, user["id"]),
    )
    record = await asyncio.to_thread(
        keystore.lock_keystore,
        keys,
        user_id=user["id"],
        username=user["username"],
        device_id=device["id"],
        passphrase=passphrase,
    )
    ctx.profile.save_keystore(record)
    ctx.save(session)
    say(f"device {device['id']} registered; key file {ctx.profile.keystore_path}")
    say(f"encryption fingerprint: {fingerprint(keys.enc_kid)}")
    say(f"signing fingerprint:    {fingerprint(keys.sig_kid)}")


async def cmd_device_import(ctx: Context) -> None:
    if ctx.profile.load_keystore() is not None and not ctx.args.force:
        raise CliError(f"a key file exists already: {ctx.profile.keystore_path} (use --force)")
    record = read_json(Path(ctx.args.file))
    if record is None:
        raise CliError(f"no such file: {ctx.args.file}")
    if not isinstance(record, dict) or record.get("kind") != keystore.KIND:
        raise CliError(f"{ctx.args.file} is not an e2ee-chat key file")
    passphrase = read_secret(PASSPHRASE_ENV, "Key passphrase: ")
    keys = await asyncio.to_thread(keystore.unlock_keystore, record, passphrase)
    session = ctx.session()
    user = await require_user(session)
    if user["id"] != record["user_id"]:
        raise CliError(
            f"the key file is {clean(str(record.get('username')))!r}'s; "
            f"logged in as {clean(user['username'])!r}"
        )
    mine = {d["id"]: d for d in await session.my_devices()}
    device = mine.get(record["device_id"])
    if device is None or (device["enc_kid"], device["sig_kid"]) != (keys.enc_kid, keys.sig_kid):
        raise CliError("the key file's device is not registered on this server")
    if device["revoked"]:
        raise CliError(f"device {device['id']} was revoked on {device['revoked']}")
    ctx.profile.save_keystore(record)
    ctx.save(session)
    say(f"imported device {device['id']} ({clean(device['name'])}) of {clean(user['username'])}")


async def cmd_device_export(ctx: Context) -> None:
    write_json(Path(ctx.args.file), ctx.keystore())
    say(f"key file written to {ctx.args.file} (still locked by its passphrase)")


async def cmd_device_list(ctx: Context) -> None:
    session = ctx.session()
    await require_user(session)
    record = ctx.profile.load_keystore() or {}
    for device in await session.my_devices():
        this = " (this one)" if device["id"] == record.get("device_id") else ""
        state = f"revoked {device['revoked']}" if device["revoked"] else "active"
        say(f"{device['id']}  {clean(device['name'])}  {state}{this}")
        say(f"    signing    {fingerprint(device['sig_kid'])}")
        say(f"    encryption {fingerprint(device['enc_kid'])}")


async def cmd_device_revoke(ctx: Context) -> None:
    session = ctx.session()
    await session.revoke_device(ctx.args.device_id)
    say(f"device {ctx.args.device_id} revoked")


# --- commands: messaging ---------------------------------------------------------------


async def cmd_conversations(ctx: Context) -> None:
    session = ctx.session()
    user = await require_user(session)
    conversations = await session.conversations()
    if ctx.args.json:
        say(json.dumps(conversations, ensure_ascii=False))
        return
    for c in conversations:
        others = ", ".join(m["username"] for m in c["members"] if m["id"] != user["id"])
        if c["kind"] == "direct":
            label = f"direct with {others or '(left)'}"
        else:
            label = f"group {c['title'] or ''!r}: {others}"
        say(f"{c['id']}  {clean(label)}  last #{c['last_seq']}  unread {c['unread']}")


async def cmd_fingerprints(ctx: Context) -> None:
    session = ctx.session()
    user = await require_user(session)
    record = ctx.profile.load_keystore()
    if record:
        say(f"this device ({record['device_id']})")
        say(f"    signing    {fingerprint(record['sig_kid'])}")
        say(f"    encryption {fingerprint(record['enc_kid'])}")
    directory = DeviceDirectory(session)
    names = ctx.args.users
    if not names:
        names = sorted(
            {m["username"] for c in await session.conversations() for m in c["members"]}
            | {user["username"]}
        )
    for name in names:
        try:
            devices = await directory.devices_of(name)
        except ChatApiError as exc:
            if exc.code == "not_found":
                raise CliError(f"unknown user: {clean(name)}") from exc
            raise
        for device in devices:
            say(f"{clean(name)}  device {device.id} {clean(device.name)!r}")
            say(f"    signing    {fingerprint(device.sig_kid)}")
            say(f"    encryption {fingerprint(device.enc_kid)}")
    for problem in directory.skipped:
        warn(f"!! refused a device record: {problem}")


async def cmd_send(ctx: Context) -> None:
    text = ctx.args.text
    if text is None or text == "-":
        text = sys.stdin.read()
        text = text[:-1] if text.endswith("\n") else text
    if not text:
        raise CliError("nothing to send")
    client = await ctx.client()
    try:
        message = await client.send_text(parse_target(ctx.args.target), text)
    finally:
        report_notices(client)
        ctx.save_state(client)
    say(f"sent [{message['conversation']}#{message['seq']}] id {message['id']}")


async def cmd_history(ctx: Context) -> None:
    client = await ctx.client()
    conversation = await client.conversation(parse_target(ctx.args.target))
    messages, has_more = await client.history(conversation["id"], limit=ctx.args.limit)
    for message in messages:
        say(as_json(message) if ctx.args.json else event_line(message))
    if has_more and not ctx.args.json:
        warn("(older messages not shown; raise --limit)")
    report_notices(client)
    ctx.save_state(client)


def status_line(event: Status) -> str:
    if event.retry_in is None:
        return f"-- {event.state}"
    return f"-- {event.state} ({event.detail}); retrying in {event.retry_in:.1f}s"


async def cmd_listen(ctx: Context) -> None:
    client = await ctx.client()
    stop_on_sigterm()
    since = "start" if ctx.args.from_start else "cursor"
    async for event in client.events(since=since):
        if isinstance(event, Status):
            warn(status_line(event))
            if ctx.args.json:
                say(as_json(event))
            continue
        line = as_json(event) if ctx.args.json else event_line(event)
        hidden = isinstance(event, IncomingMessage) and event.own and ctx.args.no_own
        if line is not None and not hidden:
            say(line)
        if isinstance(event, IncomingMessage):
            # Printed means handled: save the cursor now, not when the next event is asked for.
            client.advance(event.conversation, event.seq)
        ctx.save_state(client)


def stop_on_sigterm() -> None:
    """SIGTERM cancels the command at its next await, so no line is half handled."""
    task = asyncio.current_task()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


# --- parser and main -------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-client",
        description="Terminal client of the end-to-end encrypted chat.",
        epilog=(
            f"Environment: {SERVER_ENV} (server URL), CHAT_CONFIG_DIR (profile directory), "
            f"{PASSPHRASE_ENV} and {PASSWORD_ENV} (secrets for scripts; less safe than the "
            f"prompt), {KEY_BITS_ENV} (RSA size for device setup)."
        ),
    )
    parser.add_argument(
        "--server", help=f"server URL, e.g. https://chat.example (or ${SERVER_ENV})"
    )
    parser.add_argument(
        "--config-dir", help="profile directory (default $CHAT_CONFIG_DIR or ~/.config/e2ee-chat)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, handler, help_text, **kwargs):
        sub = commands.add_parser(name, help=help_text, description=help_text, **kwargs)
        sub.set_defaults(handler=handler)
        return sub

    add("register", cmd_register, "create an account and log in").add_argument("username")
    add("login", cmd_login, "log in (session kept in the profile, 0600)").add_argument("username")
    add("logout", cmd_logout, "log out")

    device = commands.add_parser("device", help="this client's device keys")
    device_commands = device.add_subparsers(dest="device_command", required=True, metavar="ACTION")

    def add_device(name, handler, help_text):
        sub = device_commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    setup = add_device("setup", cmd_device_setup, "make keys, register them, write the key file")
    setup.add_argument("--name", help="device name shown to you (default: host name)")
    setup.add_argument(
        "--key-bits", type=int, choices=protocol.ALLOWED_KEY_BITS, help="RSA size (default 3072)"
    )
    setup.add_argument("--force", action="store_true", help="replace an existing key file")
    imp = add_device("import", cmd_device_import, "use a key file exported from the browser")
    imp.add_argument("file")
    imp.add_argument("--force", action="store_true", help="replace an existing key file")
    add_device("export", cmd_device_export, "copy the (locked) key file").add_argument("file")
    add_device("list", cmd_device_list, "list your devices")
    add_device("revoke", cmd_device_revoke, "revoke one of your devices").add_argument(
        "device_id", type=int
    )

    conversations = add("conversations", cmd_conversations, "list your conversations")
    conversations.add_argument("--json", action="store_true", help="print the server's JSON")
    fingerprints = add("fingerprints", cmd_fingerprints, "list device fingerprints")
    fingerprints.add_argument("users", nargs="*", help="users (default: everyone you talk to)")

    send = add("send", cmd_send, "send a text message")
    send.add_argument("target", help="conversation id (7, #7) or username (bob, @bob)")
    send.add_argument("text", nargs="?", help="the text (default: read stdin; '-' too)")

    history = add("history", cmd_history, "show a conversation's messages")
    history.add_argument("target", help="conversation id (7, #7) or username (bob, @bob)")
    history.add_argument("--limit", type=int, default=50, help="how many (at most 100)")
    history.add_argument("--json", action="store_true", help="one JSON object per line")

    listen = add("listen", cmd_listen, "print messages as they arrive; reconnects by itself")
    listen.add_argument("--json", action="store_true", help="one JSON object per line")
    listen.add_argument(
        "--from-start", action="store_true", help="first run: replay all history, not only new"
    )
    listen.add_argument("--no-own", action="store_true", help="do not print your own messages")
    return parser


def describe(error: BaseException) -> str:
    """The one-line message for an error."""
    if isinstance(error, keystore.WrongPassphrase):
        return "wrong passphrase for the key file"
    if isinstance(error, keystore.KeystoreError):
        return f"unusable key file: {error}"
    if isinstance(error, ServerUnreachable):
        return str(error)
    if isinstance(error, SocketClosed):
        if error.code == 4401:
            return "the server refused the connection: not logged in (run `chat-client login`)"
        if error.code == 4403:
            return "the server refused this device (revoked, or another user's key file)"
        return str(error)
    if isinstance(error, ChatApiError):
        if error.code == "not_authenticated":
            return "not logged in (run `chat-client login USERNAME`)"
        if error.code == "invalid_credentials":
            return "wrong username or password"
        if error.code == "not_found" and error.extra.get("usernames"):
            return f"unknown user: {clean(', '.join(map(str, error.extra['usernames'])))}"
        if error.code == "stale_devices":
            return "the recipients' devices kept changing; try again"
        return f"{error.code}: {clean(error.detail)}"
    if isinstance(error, protocol.ProtocolError):
        return f"{error.code}: {error.detail}"
    return str(error) or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``chat-client``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(args.handler(Context(args)))
    except KeyboardInterrupt:
        return 130
    except asyncio.CancelledError:  # SIGTERM during listen
        return 0
    except (CliError, ChatError, keystore.KeystoreError, protocol.ProtocolError) as error:
        warn(f"chat-client: error: {describe(error)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
