"""This device joining its account (PROTOCOL §7.1, §7.2, §7.5): the first device makes
the identity; a further device asks to be linked and receives the identity from one of
the user's devices; a v1 device of a user without an identity upgrades itself.

Each function works on a logged-in ``ChatSession``; the caller keeps the keystore
record they return (and, after linking, the trust state they hand over).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from . import keystore, protocol
from .directory import certifies, check_device, check_identity
from .errors import ChatApiError, ChatError, LinkError
from .session import ChatSession

POLL_SECONDS = 1.0  # the new device has no socket yet: it polls (plan, §7.2)


async def _me(session: ChatSession) -> dict:
    user = await session.get_session()
    if user is None:
        raise ChatApiError(401, "not_authenticated", "not logged in")
    return user


def _lock(
    keys: protocol.DeviceKeys, user: dict, device_id: int, passphrase: str, iterations: int | None
) -> dict:
    options = {} if iterations is None else {"iterations": iterations}
    return keystore.lock_keystore(
        keys,
        user_id=user["id"],
        username=user["username"],
        device_id=device_id,
        passphrase=passphrase,
        **options,
    )


def _device_body(keys: protocol.DeviceKeys, user_id: int) -> tuple[str, str, str]:
    return (
        protocol.b64encode(keys.enc_spki),
        protocol.b64encode(keys.sig_spki),
        protocol.sign_device_proof(keys, user_id),
    )


# --- the first device, or a reset (§7.1) --------------------------------------------------


async def setup_first_device(
    session: ChatSession,
    *,
    name: str,
    passphrase: str,
    bits: int = protocol.DEFAULT_KEY_BITS,
    reset: bool = False,
    iterations: int | None = None,
    keys: protocol.DeviceKeys | None = None,
) -> tuple[protocol.DeviceKeys, dict, dict]:
    """Make the identity key and this device's keys (or use ``keys``, which hold an
    identity), ``PUT /api/identity/`` and register the device with its cert. Returns
    (keys, keystore record, device).

    ``reset`` replaces an existing identity: every other device of the user is revoked
    and her contacts see an identity change. Without it an account that has an identity
    is ``ChatError`` (link this device instead).
    """
    user = await _me(session)
    if keys is not None and keys.id_private is None:
        raise ValueError("keys for a first device hold the identity key")
    if keys is None:
        keys = await asyncio.to_thread(protocol.generate_device_keys, bits)
        keys = keys.with_identity(await asyncio.to_thread(protocol.generate_identity_key, bits))
    try:
        await session.put_identity(
            protocol.b64encode(keys.id_spki),
            protocol.sign_identity_proof(keys.id_private, user["id"]),
            replace=reset,
        )
    except ChatApiError as exc:
        if exc.code == "identity_exists":
            raise ChatError(
                "your account has an identity key already: link this device from one of "
                "your devices (`chat-client device link`), or reset (`device setup --reset`)"
            ) from exc
        raise
    cert = protocol.sign_device_cert(keys.id_private, user["id"], keys.enc_kid, keys.sig_kid)
    device = await session.register_device(name, *_device_body(keys, user["id"]), cert)
    record = await asyncio.to_thread(_lock, keys, user, device["id"], passphrase, iterations)
    return keys, record, device


# --- linking this device (§7.2) -----------------------------------------------------------


@dataclass(frozen=True)
class LinkedDevice:
    """What the approval gave this device: its keys with the identity, the registered
    device and the approver's trust state (to adopt)."""

    keys: protocol.DeviceKeys
    device: dict
    trust: dict


class NewDeviceLink:
    """This device asking to join its account: ``start`` posts the request; show
    ``code`` to the person, then ``wait`` for the approval."""

    def __init__(
        self, session: ChatSession, user: dict, keys: protocol.DeviceKeys, id_kid: str, request
    ):
        self.session = session
        self.user = user
        self.keys = keys
        self.id_kid = id_kid
        self.request = request
        self.raw_code = protocol.link_code(user["id"], id_kid, keys.enc_kid, keys.sig_kid)

    @property
    def code(self) -> str:
        """The link code in five groups of four."""
        return protocol.format_link_code(self.raw_code)

    @classmethod
    async def start(
        cls,
        session: ChatSession,
        *,
        name: str,
        bits: int = protocol.DEFAULT_KEY_BITS,
        keys: protocol.DeviceKeys | None = None,
    ) -> NewDeviceLink:
        """Read my identity, make keys (or use a v1 device's ``keys``, §7.5) and post the
        link request. ``ChatError`` if the account has no identity yet (set up instead)."""
        user = await _me(session)
        answer = await session.user_identity(user["username"])
        if answer.get("identity") is None:
            raise ChatError(
                "your account has no identity key yet: set this device up with "
                "`chat-client device setup`"
            )
        identity = check_identity(answer["identity"], user["id"])
        if keys is None:
            keys = await asyncio.to_thread(protocol.generate_device_keys, bits)
        request = await session.create_link_request(name, *_device_body(keys, user["id"]))
        return cls(session, user, keys, identity.id_kid, request)

    async def wait(
        self,
        *,
        poll: float = POLL_SECONDS,
        timeout: float | None = None,
        on_poll: Callable[[], None] | None = None,
    ) -> LinkedDevice:
        """Poll until the request is approved, then open ``id_wrap`` and check that the
        identity is the one the code was computed from. ``LinkError`` if it is denied,
        expires, or hands over another identity."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    request = await self.session.link_request(self.request["id"])
                except ChatApiError as exc:
                    if exc.code == "not_found":
                        raise LinkError("the link request expired or was removed") from exc
                    raise
                status = request.get("status")
                if status == "denied":
                    raise LinkError("the link request was denied")
                if status == "approved" and request.get("id_wrap") and request.get("device"):
                    return self._open(request)
                if on_poll is not None:
                    on_poll()
                await asyncio.sleep(poll)

    def _open(self, request: dict) -> LinkedDevice:
        user_id = self.user["id"]
        try:
            id_private, trust = protocol.open_id_wrap(
                request["id_wrap"], user_id=user_id, device_keys=self.keys
            )
        except protocol.ProtocolError as exc:
            raise LinkError(f"the approval does not open: {exc.detail}") from exc
        if protocol.compute_kid(protocol.spki_of(id_private)) != self.id_kid:
            raise LinkError(
                "the approving device holds another identity key than this device was "
                "shown: the codes could not have matched; do not use this link"
            )
        keys = self.keys.with_identity(id_private)
        device = request["device"]
        checked = check_device(device, user_id, self.user["username"])
        if (checked.enc_kid, checked.sig_kid) != (keys.enc_kid, keys.sig_kid):
            raise LinkError("the registered device does not hold this device's keys")
        return LinkedDevice(keys, device, trust)

    async def cancel(self) -> None:
        """Withdraw the request."""
        await self.session.deny_link_request(self.request["id"])

    def keystore(self, linked: LinkedDevice, passphrase: str, iterations: int | None = None):
        """The v2 keystore record of the linked device."""
        return _lock(linked.keys, self.user, linked.device["id"], passphrase, iterations)


# --- upgrading a v1 device (§7.5) ---------------------------------------------------------


async def upgrade_device(
    session: ChatSession,
    keys: protocol.DeviceKeys,
    *,
    user_id: int,
    username: str,
    device_id: int,
    passphrase: str,
    iterations: int | None = None,
    save_record: Callable[[dict], None] | None = None,
) -> tuple[protocol.DeviceKeys, dict]:
    """Make the identity of a user who has none, from her v1 device: the new v2 record
    is handed to ``save_record`` first (so a crash cannot lose the key), then the identity
    is put with the upgrade signature of this device's v1 signing key and this device
    certified. Returns (keys with identity, v2 record). ``ChatError`` if the user has an
    identity already: link this device or revoke it."""
    answer = await session.user_identity(username)
    if answer.get("identity") is not None:
        raise ChatError(
            "your account has an identity key already: link this device "
            "(`chat-client device link`) or revoke it"
        )
    bits = keys.sig_private.size_in_bits()
    id_private = await asyncio.to_thread(protocol.generate_identity_key, bits)
    upgraded = keys.with_identity(id_private)
    user = {"id": user_id, "username": username}
    record = await asyncio.to_thread(_lock, upgraded, user, device_id, passphrase, iterations)
    if save_record is not None:
        save_record(record)
    await complete_identity(session, upgraded, user_id=user_id, device_id=device_id)
    return upgraded, record


async def complete_identity(
    session: ChatSession, keys: protocol.DeviceKeys, *, user_id: int, device_id: int
) -> bool:
    """Finish what an upgrade may have left undone (idempotent): put this device's
    identity if the server lists none, and certify this device if it has no valid cert.
    Returns whether anything was done."""
    me = await _me(session)
    answer = await session.user_identity(me["username"])
    done = False
    if answer.get("identity") is None:
        upgrade = protocol.sign_identity_upgrade(keys, user_id, keys.id_kid)
        await session.put_identity(
            protocol.b64encode(keys.id_spki),
            protocol.sign_identity_proof(keys.id_private, user_id),
            upgrade=upgrade,
        )
        answer = await session.user_identity(me["username"])
        done = True
    identity = check_identity(answer["identity"], user_id)
    if identity.id_kid != keys.id_kid:
        return done  # another identity: this device must be linked (the caller says so)
    for record in await session.my_devices():
        if record["id"] != device_id:
            continue
        device = check_device(record, user_id, me["username"])
        if not certifies(identity, device):
            cert = protocol.sign_device_cert(keys.id_private, user_id, keys.enc_kid, keys.sig_kid)
            await session.certify_device(device_id, cert)
            done = True
    return done
