"""What every ``chat-client`` command shares: the profile context, secrets from the
environment or a prompt, one-line output, confirmations and a progress bar."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from . import keystore, protocol
from .client import ChatClient
from .config import Profile, default_config_dir
from .display import event_line
from .errors import ChatApiError, ChatError
from .session import ChatSession
from .state import StateStore

SERVER_ENV = "CHAT_SERVER"
PASSPHRASE_ENV = "CHAT_PASSPHRASE"
PASSWORD_ENV = "CHAT_PASSWORD"
KEY_BITS_ENV = "CHAT_KEY_BITS"
KDF_ITERATIONS_ENV = "CHAT_KDF_ITERATIONS"


class CliError(ChatError):
    """A failure to report as one line."""


def say(text: str = "") -> None:
    print(text, flush=True)


def warn(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


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


def confirm(question: str) -> bool:
    """Ask a y/N question on the terminal; anything but y/yes is no."""
    if not sys.stdin.isatty():
        raise CliError("no terminal to confirm on")
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def parse_target(value: str) -> int | str:
    """``7`` or ``#7``: conversation 7; ``bob`` or ``@bob``: the direct conversation with bob."""
    if value.startswith("@"):
        return value[1:]
    digits = value.removeprefix("#")
    if digits.isdigit():
        return int(digits)
    return value


def conversation_id(value: str) -> int:
    """A conversation id argument (``7`` or ``#7``)."""
    target = parse_target(value)
    if not isinstance(target, int):
        raise CliError(f"not a conversation id: {value}")
    return target


def key_bits(args: argparse.Namespace) -> int:
    bits = args.key_bits or int(os.environ.get(KEY_BITS_ENV) or protocol.DEFAULT_KEY_BITS)
    if bits not in protocol.ALLOWED_KEY_BITS:
        raise CliError(f"key size must be one of {protocol.ALLOWED_KEY_BITS}")
    return bits


def kdf_iterations() -> int | None:
    """PBKDF2 iterations for a key file this run writes: ``CHAT_KDF_ITERATIONS`` within the
    keystore's bounds, or None for the keystore's default (600,000)."""
    raw = os.environ.get(KDF_ITERATIONS_ENV)
    if not raw:
        return None
    try:
        iterations = int(raw)
    except ValueError:
        iterations = 0
    if not keystore.MIN_ITERATIONS <= iterations <= keystore.MAX_ITERATIONS:
        raise CliError(
            f"{KDF_ITERATIONS_ENV} must be {keystore.MIN_ITERATIONS}..{keystore.MAX_ITERATIONS}"
        )
    return iterations


async def require_user(session: ChatSession) -> dict:
    user = await session.get_session()
    if user is None:
        raise ChatApiError(401, "not_authenticated", "not logged in")
    return user


class Progress:
    """A one-line progress bar on a terminal's stderr (nothing elsewhere)."""

    def __init__(self, label: str, width: int = 30) -> None:
        self.label = label
        self.width = width
        self.shown = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.shown:
            return
        filled = self.width if total <= 0 else self.width * min(done, total) // total
        bar = "#" * filled + "." * (self.width - filled)
        sys.stderr.write(f"\r{self.label} [{bar}] {done}/{total}")
        sys.stderr.flush()

    def end(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


class Context:
    """Parsed arguments plus the profile's files."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sessions: list[ChatSession] = []
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
                session = ChatSession.from_state(saved)
            else:
                session = ChatSession(url)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        self.sessions.append(session)
        return session

    async def close(self) -> None:
        """Close the HTTP connections of the sessions this command made."""
        for session in self.sessions:
            await session.aclose()

    def save(self, session: ChatSession) -> None:
        self.profile.save_session(session.export_state())

    def keystore(self) -> dict:
        record = self.profile.load_keystore()
        if record is None:
            raise CliError(
                "this profile has no device key yet: run `chat-client device setup`, "
                "`chat-client device link` or `chat-client device import FILE`"
            )
        return record

    def state(self, device_id: int) -> StateStore:
        return StateStore(self.profile.state_path, device_id=device_id)

    async def client(self, *, upgrade: bool = True) -> ChatClient:
        """The unlocked device, logged in as the key file's user. A v1 key file of a user
        without an identity is upgraded (§7.5) and rewritten as v2 (unless ``upgrade`` is
        off); one of a user who has an identity must be linked."""
        record = self.keystore()
        session = self.session()
        passphrase = read_secret(PASSPHRASE_ENV, "Key passphrase: ")
        state = self.state(record["device_id"])
        client = await ChatClient.unlock(session, record, passphrase, state=state)
        await client.check_login()
        await client.check_device()
        if client.keys.id_private is not None:
            if await client.complete_identity():
                warn("finished this device's upgrade: identity key set and device certified")
        elif upgrade:
            try:
                await client.upgrade(
                    passphrase,
                    save_record=self.profile.save_keystore,
                    iterations=kdf_iterations(),
                )
            except ChatError as exc:
                raise CliError(
                    "this key file is from before identity keys and your account has one: "
                    "link this device (`chat-client device link`) or revoke it"
                ) from exc
            warn("upgraded this device: made your identity key; the key file is now v2")
        return client


def report_notices(client: ChatClient) -> None:
    """Print the client's queued notices on stderr."""
    for notice in client.pop_notices():
        line = event_line(notice)
        if line is not None:
            warn(line)
