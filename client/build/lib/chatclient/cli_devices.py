"""``chat-client`` commands for this device, the account's other devices and the people's
identities (PROTOCOL §7): setup, link, approve, history transfer, upgrade, import,
export, list, revoke, safety numbers and accepting an identity change."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from pathlib import Path

from . import keystore, protocol
from .client import ChatClient
from .clikit import (
    PASSPHRASE_ENV,
    CliError,
    Context,
    Progress,
    confirm,
    kdf_iterations,
    key_bits,
    read_secret,
    report_notices,
    require_user,
    say,
)
from .config import read_json, write_json
from .devices import NewDeviceLink, setup_first_device
from .directory import fingerprint
from .display import clean
from .errors import ChatApiError


def _device_name(ctx: Context) -> str:
    return ctx.args.name or f"chat-client on {socket.gethostname()}"[:100]


def _check_no_key_file(ctx: Context) -> None:
    if ctx.profile.load_keystore() is not None and not ctx.args.force:
        raise CliError(f"a key file exists already: {ctx.profile.keystore_path} (use --force)")


async def cmd_device_setup(ctx: Context) -> None:
    _check_no_key_file(ctx)
    session = ctx.session()
    await require_user(session)
    if ctx.args.reset and sys.stdin.isatty():
        question = (
            "Reset: every other device of yours is signed out and your contacts see a "
            "safety-number change. Go on?"
        )
        if not confirm(question):
            raise CliError("not reset")
    passphrase = read_secret(PASSPHRASE_ENV, "New key passphrase: ", confirm=True)
    keys, record, device = await setup_first_device(
        session,
        name=_device_name(ctx),
        passphrase=passphrase,
        bits=key_bits(ctx.args),
        reset=ctx.args.reset,
        iterations=kdf_iterations(),
    )
    ctx.profile.save_keystore(record)
    ctx.save(session)
    client = ChatClient(
        session,
        keys,
        user_id=record["user_id"],
        username=record["username"],
        device_id=device["id"],
        state=ctx.state(device["id"]),
    )
    client.save()
    say(f"device {device['id']} registered; key file {ctx.profile.keystore_path}")
    say(f"identity fingerprint: {fingerprint(keys.id_kid)}")
    if ctx.args.reset:
        say("identity reset: your other devices are signed out; contacts will see the change")


async def cmd_device_link(ctx: Context) -> None:
    iterations = kdf_iterations()  # checked before anything is asked for
    existing = ctx.profile.load_keystore()
    session = ctx.session()
    user = await require_user(session)
    keys = None
    if existing is not None and existing.get("v") == 1 and existing.get("user_id") == user["id"]:
        # §7.5: a v1 device of an account that has an identity is linked with its keys.
        passphrase = read_secret(PASSPHRASE_ENV, "Key passphrase: ")
        keys = await asyncio.to_thread(keystore.unlock_keystore, existing, passphrase)
    else:
        _check_no_key_file(ctx)
        passphrase = read_secret(PASSPHRASE_ENV, "New key passphrase: ", confirm=True)
    link = await NewDeviceLink.start(
        session, name=_device_name(ctx), bits=key_bits(ctx.args), keys=keys
    )
    ctx.save(session)
    say(f"link code: {link.code}")
    say(
        "On one of your devices run `chat-client device approve` (or open the chat in "
        "your browser) and approve only if it shows this same code. Waiting…"
    )
    try:
        linked = await link.wait(timeout=ctx.args.timeout)
    except TimeoutError as exc:
        await _cancel(link)
        raise CliError("no approval came in time; the request is withdrawn") from exc
    except asyncio.CancelledError:
        await _cancel(link)
        raise
    record = await asyncio.to_thread(link.keystore, linked, passphrase, iterations)
    ctx.profile.save_keystore(record)
    client = ChatClient(
        session,
        linked.keys,
        user_id=user["id"],
        username=user["username"],
        device_id=linked.device["id"],
        state=ctx.state(linked.device["id"]),
    )
    client.trust.adopt(linked.trust)
    client.save()
    trusted = len(linked.trust["identities"])
    say(f"linked: device {linked.device['id']}; key file {ctx.profile.keystore_path}")
    say(f"adopted the approving device's trust in {trusted} identities")


async def _cancel(link: NewDeviceLink) -> None:
    with contextlib.suppress(ChatApiError):
        await link.cancel()


async def _transfer(client: ChatClient, device_id: int) -> None:
    bar = Progress(f"history for device {device_id}")
    try:
        posted = await client.transfer_history(device_id, progress=bar)
    finally:
        bar.end()
    say(f"history: gave device {device_id} the keys of {posted} messages")


async def cmd_device_approve(ctx: Context) -> None:
    client = await ctx.client()
    requests = await client.link_requests()
    if ctx.args.request_id is not None:
        requests = [r for r in requests if r.id == ctx.args.request_id]
    if not requests:
        raise CliError("no pending link request" + (" with that id" if ctx.args.request_id else ""))
    chosen = []
    if ctx.args.code is not None:
        chosen = [r for r in requests if protocol.same_link_code(ctx.args.code, r.raw_code)]
        if not chosen:
            raise CliError("no pending link request has this code: do not approve it")
    else:
        if not sys.stdin.isatty():
            raise CliError("no terminal to confirm on: pass --code CODE (the new device's)")
        for request in requests:
            say(f"request {request.id}: {clean(request.name)!r}, expires {request.expires}")
            say(f"    code {request.code}")
            if confirm("Does the new device show exactly this code? Approve it?"):
                chosen.append(request)
    for request in chosen:
        device = await client.approve_link(request.id, code=request.raw_code)
        say(f"approved request {request.id}: device {device['id']} ({clean(device['name'])})")
        if not ctx.args.no_history:
            await _transfer(client, device["id"])
    report_notices(client)


async def cmd_device_transfer(ctx: Context) -> None:
    client = await ctx.client()
    await _transfer(client, ctx.args.device_id)


async def cmd_device_upgrade(ctx: Context) -> None:
    client = await ctx.client()
    say(f"device {client.device_id} holds identity {fingerprint(client.keys.id_kid)}")


async def cmd_device_import(ctx: Context) -> None:
    _check_no_key_file(ctx)
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
    user = await require_user(session)
    record = ctx.profile.load_keystore() or {}
    answer = await session.user_identity(user["username"])
    identity = answer.get("identity")
    if identity:
        say(f"identity {fingerprint(identity['id_kid'])}")
    else:
        say("no identity key yet")
    for device in await session.my_devices():
        this = " (this one)" if device["id"] == record.get("device_id") else ""
        state = f"revoked {device['revoked']}" if device["revoked"] else "active"
        cert = "" if device.get("cert") else ", NO CERTIFICATE"
        say(f"{device['id']}  {clean(device['name'])}  {state}{cert}{this}")
        say(f"    signing    {fingerprint(device['sig_kid'])}")
        say(f"    encryption {fingerprint(device['enc_kid'])}")


async def cmd_device_revoke(ctx: Context) -> None:
    session = ctx.session()
    await session.revoke_device(ctx.args.device_id)
    say(f"device {ctx.args.device_id} revoked")


def _number_lines(number: str) -> list[str]:
    groups = number.split()
    return ["    " + " ".join(groups[:6]), "    " + " ".join(groups[6:])]


async def cmd_safety_number(ctx: Context) -> None:
    client = await ctx.client()
    name = ctx.args.user
    if ctx.args.verify or ctx.args.unverify:
        await client.mark_verified(name, verified=ctx.args.verify)
    number = await client.safety_number(name)
    label = "verified" if number.verified else "not verified"
    say(f"safety number with {clean(number.username)} ({label}):")
    for line in _number_lines(number.number or ""):
        say(line)
    if number.pending is not None:
        say(f"!! {clean(number.username)}'s identity key changed; the new safety number is:")
        for line in _number_lines(number.pending):
            say(line)
        say(f"compare it with {clean(number.username)}, then `chat-client identity accept`")
    elif ctx.args.verify:
        say("marked as verified")
    client.save()
    report_notices(client)


async def cmd_identity_accept(ctx: Context) -> None:
    client = await ctx.client()
    await client.accept_identity(ctx.args.user)
    number = await client.safety_number(ctx.args.user)
    say(f"accepted {clean(number.username)}'s new identity key; safety number:")
    for line in _number_lines(number.number or ""):
        say(line)
    client.save()
    report_notices(client)


def add_commands(commands, add) -> None:
    """The device, safety-number and identity commands, on the top-level subparsers."""
    device = commands.add_parser("device", help="this client's device and your other devices")
    actions = device.add_subparsers(dest="device_command", required=True, metavar="ACTION")

    def sub(name, handler, help_text):
        parser = actions.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(handler=handler)
        return parser

    def key_options(parser):
        parser.add_argument("--name", help="device name shown to you (default: host name)")
        parser.add_argument(
            "--key-bits",
            type=int,
            choices=protocol.ALLOWED_KEY_BITS,
            help="RSA size (default 3072)",
        )
        parser.add_argument("--force", action="store_true", help="replace an existing key file")

    setup = sub("setup", cmd_device_setup, "first device: make your identity key and this device")
    key_options(setup)
    setup.add_argument(
        "--reset", action="store_true", help="replace your identity (signs out all other devices)"
    )
    link = sub("link", cmd_device_link, "join your account from another device (prints a code)")
    key_options(link)
    link.add_argument("--timeout", type=float, default=600, help="seconds to wait (default 600)")
    approve = sub("approve", cmd_device_approve, "approve a new device that asks to join")
    approve.add_argument("request_id", type=int, nargs="?", help="one request (default: all)")
    approve.add_argument("--code", help="approve the request with this code (for scripts)")
    approve.add_argument("--no-history", action="store_true", help="do not give it the history")
    transfer = sub("transfer", cmd_device_transfer, "give a linked device the history (resumes)")
    transfer.add_argument("device_id", type=int)
    sub("upgrade", cmd_device_upgrade, "make the identity key from a v1 key file (§7.5)")
    imp = sub("import", cmd_device_import, "use a key file exported from the browser")
    imp.add_argument("file")
    imp.add_argument("--force", action="store_true", help="replace an existing key file")
    sub("export", cmd_device_export, "copy the (locked) key file").add_argument("file")
    sub("list", cmd_device_list, "list your devices and whether each is certified")
    sub("revoke", cmd_device_revoke, "revoke one of your devices").add_argument(
        "device_id", type=int
    )

    safety = add("safety-number", cmd_safety_number, "the safety number with a person")
    safety.add_argument("user")
    marks = safety.add_mutually_exclusive_group()
    marks.add_argument("--verify", action="store_true", help="mark it as verified (it matched)")
    marks.add_argument("--unverify", action="store_true", help="take the verified mark back")

    identity = commands.add_parser("identity", help="people's identity keys")
    identity_actions = identity.add_subparsers(dest="identity_command", required=True)
    accept = identity_actions.add_parser(
        "accept", help="accept a person's changed identity key", description="accept a change"
    )
    accept.set_defaults(handler=cmd_identity_accept)
    accept.add_argument("user")
