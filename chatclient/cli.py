"""``chat-client``: the terminal client of PROTOCOL.md (see docs/client.md).

Every failure ends with one ``chat-client: error: ...`` line on stderr and exit status 1
(2 for usage errors, 130 when interrupted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from . import contacts, keystore, protocol
from .attachments import FileRefused, clean_file_name
from .cli_devices import add_commands as add_device_commands
from .clikit import (
    KEY_BITS_ENV,
    PASSPHRASE_ENV,
    PASSWORD_ENV,
    SERVER_ENV,
    CliError,
    Context,
    Progress,
    conversation_id,
    parse_target,
    read_secret,
    report_notices,
    require_user,
    say,
    warn,
)
from .directory import Directory, fingerprint
from .display import as_json, clean, event_line, history_lines, human_size
from .errors import (
    ChatApiError,
    ChatError,
    LinkError,
    SendingPaused,
    ServerUnreachable,
    SocketClosed,
    TamperedConversation,
)
from .events import ConversationChanged, IncomingMessage, Status
from .trust import TrustBook

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


# --- commands: conversations and groups ------------------------------------------------


async def cmd_conversations(ctx: Context) -> None:
    session = ctx.session()
    user = await require_user(session)
    conversations = await session.conversations()
    if ctx.args.json:
        say(json.dumps(conversations, ensure_ascii=False))
        return
    record = ctx.profile.load_keystore()
    state = ctx.state(record["device_id"]) if record else None
    for c in conversations:
        others = ", ".join(m["username"] for m in c["members"] if m["id"] != user["id"])
        if c["kind"] == "direct":
            label = f"direct with {others or '(left)'}"
        else:
            label = f"group {c['title'] or ''!r}: {others}"
        view = state.get("rosters", c["id"]) if state else None
        mark = "  !! TAMPERED" if view and view.get("tampered") else ""
        mark += f"  {contacts.REQUEST_MARK}" if contacts.is_request(c) else ""
        say(f"{c['id']}  {clean(label)}  last #{c['last_seq']}  unread {c['unread']}{mark}")


async def cmd_group_create(ctx: Context) -> None:
    client = await ctx.client()
    conversation = await client.create_group(ctx.args.title, ctx.args.members)
    report_notices(client)
    say(f"group {conversation['id']} created")


async def cmd_group_change(ctx: Context) -> None:
    client = await ctx.client()
    target = conversation_id(ctx.args.conversation)
    action = ctx.args.group_command
    if action == "add":
        await client.add_members(target, ctx.args.members)
    elif action == "remove":
        await client.remove_members(target, ctx.args.members)
    elif action == "leave":
        await client.leave(target)
    else:
        await client.set_title(target, ctx.args.title)
    for notice in client.pop_notices():
        say(event_line(notice))


# --- commands: message requests and blocks (PROTOCOL §6) ------------------------------


async def cmd_requests(ctx: Context) -> None:
    session = ctx.session()
    user = await require_user(session)
    waiting = contacts.pending(await session.conversations())
    if ctx.args.json:
        say(json.dumps(waiting, ensure_ascii=False))
        return
    if not waiting:
        say("no message requests")
    for c in waiting:
        starter = ", ".join(m["username"] for m in c["members"] if m["id"] != user["id"])
        say(
            f"{c['id']}  {clean(starter)} wants to message you  unread {c['unread']}"
            f"  (accept {c['id']} | decline {c['id']} | block {clean(starter)})"
        )


async def cmd_accept(ctx: Context) -> None:
    client = await ctx.client()
    conversation = await client.accept_request(conversation_id(ctx.args.conversation))
    report_notices(client)
    say(f"accepted: conversation {conversation['id']}")


async def cmd_decline(ctx: Context) -> None:
    session = ctx.session()
    await require_user(session)
    await contacts.decline(session, conversation_id(ctx.args.conversation))
    say(f"deleted the request {conversation_id(ctx.args.conversation)}")


async def cmd_block(ctx: Context) -> None:
    session = ctx.session()  # no keys needed: the passphrase is not asked
    await require_user(session)
    if ctx.args.command == "block":
        await contacts.block(session, ctx.args.username)
        say(f"blocked {clean(ctx.args.username)}")
    else:
        await contacts.unblock(session, ctx.args.username)
        say(f"unblocked {clean(ctx.args.username)}")


async def cmd_fingerprints(ctx: Context) -> None:
    session = ctx.session()
    user = await require_user(session)
    record = ctx.profile.load_keystore()
    own_kid = record.get("id_kid") if record else None
    state = ctx.state(record["device_id"] if record else 0)
    if record:
        say(f"this device ({record['device_id']})")
        say(f"    signing    {fingerprint(record['sig_kid'])}")
        say(f"    encryption {fingerprint(record['enc_kid'])}")
    trust = TrustBook(state, user_id=user["id"], username=user["username"], id_kid=own_kid)
    directory = Directory(session, trust)
    names = ctx.args.users or sorted(
        {m["username"] for c in await session.conversations() for m in c["members"]}
        | {user["username"]}
    )
    for name in names:
        try:
            view = await directory.user(name)
        except ChatApiError as exc:
            if exc.code == "not_found":
                raise CliError(f"unknown user: {clean(name)}") from exc
            raise
        kid = view.identity.id_kid if view.identity else None
        say(f"{clean(name)}  identity {fingerprint(kid) if kid else '(none: not upgraded)'}")
        usable = directory.usable(view)
        if not view.devices:
            say("    no active device")
        for device in view.devices:
            mark = "" if device in usable else "  !! not certified by the accepted identity"
            say(f"    device {device.id} {clean(device.name)!r}{mark}")
            say(f"        signing    {fingerprint(device.sig_kid)}")
    for problem in directory.skipped:
        warn(f"!! refused a record: {problem}")


# --- commands: messages ----------------------------------------------------------------


async def cmd_send(ctx: Context) -> None:
    if ctx.args.file is not None:
        await send_file(ctx)
        return
    if ctx.args.caption is not None:
        raise CliError("--caption goes with --file")
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
        client.save()
    report_notices(client)  # on a failure its one line says what they would
    say(f"sent [{message['conversation']}#{message['seq']}] id {message['id']}")
    await warn_unreachable(client, message["conversation"])


async def warn_unreachable(client, conversation_id: int) -> None:
    """Say who among the recipients has no active device (nobody can read it for them)."""
    for name in await client.members_without_devices(conversation_id):
        warn(
            f"!! {clean(name)} has no active device: this message was not encrypted for "
            f"{clean(name)}, who will not be able to read it"
        )


async def send_file(ctx: Context) -> None:
    if ctx.args.text is not None:
        raise CliError("a file's text goes in --caption")
    path = Path(ctx.args.file)
    if not path.is_file():
        raise CliError(f"no such file: {clean(str(path))}")
    client = await ctx.client()
    progress = Progress("uploading")
    try:
        message = await client.send_file(
            parse_target(ctx.args.target), path, caption=ctx.args.caption, progress=progress
        )
    finally:
        progress.end()
        client.save()
    report_notices(client)
    say(
        f"sent [{message['conversation']}#{message['seq']}] id {message['id']} "
        f"(file {clean(clean_file_name(path.name))}, {human_size(path.stat().st_size)})"
    )
    await warn_unreachable(client, message["conversation"])


async def cmd_download(ctx: Context) -> None:
    client = await ctx.client()
    message = await client.find_message(ctx.args.message_id)
    if message is None:
        raise CliError(f"no message {ctx.args.message_id} in your conversations")
    dest = Path(ctx.args.output) if ctx.args.output else Path.cwd()
    progress = Progress("downloading")
    try:
        path = await client.download(message, dest, progress=progress)
    except FileRefused as exc:
        raise CliError(
            "this file was refused: it was changed or damaged on the way "
            f"({exc.code}: {exc.detail}); nothing was saved"
        ) from exc
    except OSError as exc:
        raise CliError(f"cannot write {clean(str(dest))}: {exc.strerror or exc}") from exc
    finally:
        progress.end()
        client.save()
    report_notices(client)
    say(f"saved {clean(str(path))} ({human_size(path.stat().st_size)})")


async def cmd_history(ctx: Context) -> None:
    client = await ctx.client()
    conversation = await client.conversation(parse_target(ctx.args.target))
    messages, has_more = await client.history(conversation["id"], limit=ctx.args.limit)
    for line in [as_json(m) for m in messages] if ctx.args.json else history_lines(messages):
        say(line)
    if has_more and not ctx.args.json:
        warn("(older messages not shown; raise --limit)")
    report_notices(client)
    client.save()


def status_line(event: Status) -> str:
    if event.retry_in is None:
        return f"-- {event.state}"
    return f"-- {event.state} ({event.detail}); retrying in {event.retry_in:.1f}s"


async def cmd_listen(ctx: Context) -> None:
    client = await ctx.client()
    stop_on_signals()
    since = "start" if ctx.args.from_start else "cursor"
    requests = contacts.RequestTracker(await client.session.conversations())
    async for event in client.events(since=since):
        if isinstance(event, ConversationChanged):
            requests.update(event.conversation)
        if isinstance(event, Status):
            warn(status_line(event))
            if ctx.args.json:
                say(as_json(event))
            continue
        line = as_json(event) if ctx.args.json else event_line(event)
        if isinstance(event, IncomingMessage) and line is not None:
            line = requests.mark(event.conversation, line, as_json=ctx.args.json)
        hidden = isinstance(event, IncomingMessage) and event.own and ctx.args.no_own
        if line is not None and not hidden:
            say(line)
        if isinstance(event, IncomingMessage):
            # Printed means handled: save the cursor now, not when the next event is asked for.
            client.advance(event.conversation, event.seq)


#: The signals that stopped `listen` (`main` answers 130 after a SIGINT, else 0).
STOPPED_BY: list[int] = []


def stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and SIGTERM cancel the command at its next await, so no line is
    half handled; a cancellation something swallowed (a library's wait racing it) is
    repeated every second until the command has ended."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def cancel() -> None:
        if not task.done():
            task.cancel()
            loop.call_later(1.0, cancel)

    def stop(sig: int) -> None:
        STOPPED_BY.append(sig)
        cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(sig, stop, sig)


# --- parser and main -------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-client",
        description="Terminal client of the end-to-end encrypted chat.",
        epilog=(
            f"Environment: {SERVER_ENV} (server URL), CHAT_CONFIG_DIR (profile directory), "
            f"{PASSPHRASE_ENV} and {PASSWORD_ENV} (secrets for scripts; less safe than the "
            f"prompt), {KEY_BITS_ENV} (RSA size for device setup and link)."
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
    add_device_commands(commands, add)

    conversations = add("conversations", cmd_conversations, "list your conversations")
    conversations.add_argument("--json", action="store_true", help="print the server's JSON")
    group = commands.add_parser("group", help="make and change groups (signed rosters)")
    group_actions = group.add_subparsers(dest="group_command", required=True, metavar="ACTION")

    def group_sub(name, handler, help_text):
        sub = group_actions.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    create = group_sub("create", cmd_group_create, "a new group of you and these people")
    create.add_argument("title")
    create.add_argument("members", nargs="+", metavar="USER")
    for name, text in (("add", "add people (owner)"), ("remove", "remove members (owner)")):
        sub = group_sub(name, cmd_group_change, text)
        sub.add_argument("conversation")
        sub.add_argument("members", nargs="+", metavar="USER")
    group_sub("leave", cmd_group_change, "leave a group").add_argument("conversation")
    title = group_sub("title", cmd_group_change, "retitle a group")
    title.add_argument("conversation")
    title.add_argument("title")

    waiting = add("requests", cmd_requests, "list message requests waiting for you")
    waiting.add_argument("--json", action="store_true", help="print the server's JSON")
    text = "accept a message request (they see you online and your read receipts)"
    add("accept", cmd_accept, text).add_argument("conversation")
    text = "delete a message request on all your devices (until they write again)"
    add("decline", cmd_decline, text).add_argument("conversation")
    add("block", cmd_block, "block a user: no messages or presence between you").add_argument(
        "username"
    )
    add("unblock", cmd_block, "lift your block of a user").add_argument("username")

    fingerprints = add("fingerprints", cmd_fingerprints, "identity and device fingerprints")
    fingerprints.add_argument("users", nargs="*", help="users (default: everyone you talk to)")

    send = add("send", cmd_send, "send a text message or a file")
    send.add_argument("target", help="conversation id (7, #7) or username (bob, @bob)")
    send.add_argument("text", nargs="?", help="the text (default: read stdin; '-' too)")
    send.add_argument("--file", metavar="PATH", help="send this file (at most 100 MiB)")
    send.add_argument("--caption", metavar="TEXT", help="a caption for --file")

    download = add("download", cmd_download, "save a file message's attachment, checked")
    download.add_argument("message_id", type=int, metavar="MESSAGE_ID")
    download.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="a directory, or the file to write (default: its name here, never overwriting)",
    )

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
    if isinstance(error, ServerUnreachable | LinkError):
        return str(error)
    if isinstance(error, SendingPaused):
        reasons = "; ".join(
            f"{clean(p.username)} {clean(p.detail)}" if p.username else clean(p.detail)
            for p in error.problems
        )
        return f"not sent: sending to conversation {error.conversation_id} is paused ({reasons})"
    if isinstance(error, TamperedConversation):
        return (
            f"not sent: conversation {error.conversation_id} was tampered with by the server "
            f"({clean(error.reason)})"
        )
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
        fields = error.extra.get("fields")
        if isinstance(fields, dict) and fields:  # e.g. why a password was refused
            reasons = "; ".join(
                clean(str(reason))
                for value in fields.values()
                for reason in (value if isinstance(value, list) else [value])
            )
            return f"{clean(error.detail).rstrip('.')}: {reasons}"
        return f"{error.code}: {clean(error.detail)}"
    if isinstance(error, protocol.ProtocolError):
        return f"{error.code}: {error.detail}"
    if isinstance(error, FileRefused):
        return f"this file was refused: it was changed or damaged on the way ({error})"
    return str(error) or type(error).__name__


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that flushing it at exit raises nothing again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


async def _run(args: argparse.Namespace) -> None:
    ctx = Context(args)
    try:
        await args.handler(ctx)
    finally:
        await ctx.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``chat-client``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        _silence_stdout()
        return 1
    except asyncio.CancelledError:  # Ctrl-C or SIGTERM during listen
        return 130 if signal.SIGINT in STOPPED_BY else 0
    except (
        CliError,
        ChatError,
        keystore.KeystoreError,
        protocol.ProtocolError,
        FileRefused,
    ) as error:
        warn(f"chat-client: error: {describe(error)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
