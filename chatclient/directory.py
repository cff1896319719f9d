"""Other devices' public keys, fetched from the server and checked before use.

Every device record is checked the same way (PROTOCOL §1): both SPKIs import as
acceptable RSA keys, each kid is the SHA-256 of its SPKI, and the proof of possession
verifies for the owner's user id. A record that fails is never used for encryption
or verification. The directory also remembers each user's set of device kids and
reports a change of that set (``DeviceSetChange``) - the terminal's "safety number
changed" warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from Crypto.PublicKey.RSA import RsaKey

from . import protocol
from .errors import ChatApiError, UntrustedDevice
from .session import ChatSession


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time with ``Z`` as an aware datetime (None stays None)."""
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class DeviceInfo:
    """One device's checked public keys and owner."""

    id: int
    user_id: int
    username: str
    name: str
    enc_kid: str
    sig_kid: str
    enc_public: RsaKey
    sig_public: RsaKey
    created: datetime
    revoked: datetime | None

    def active_at(self, moment: datetime) -> bool:
        """Whether the device existed and was not yet revoked at ``moment``."""
        return self.created <= moment and (self.revoked is None or moment <= self.revoked)


@dataclass(frozen=True)
class DeviceSetChange:
    """A user's set of active devices differs from the one seen before."""

    username: str
    added: tuple[str, ...]  # signing kids (fingerprints) of new devices
    removed: tuple[str, ...]  # signing kids of devices gone (revoked or replaced)


def check_device(record: dict, user_id: int, username: str) -> DeviceInfo:
    """Check a device record of §4 owned by ``user_id``; ``UntrustedDevice`` if it fails."""
    try:
        enc_der = protocol.b64decode(record["enc_spki"])
        sig_der = protocol.b64decode(record["sig_spki"])
        enc_public = protocol.import_public_key(enc_der)
        sig_public = protocol.import_public_key(sig_der)
        enc_kid, sig_kid = protocol.compute_kid(enc_der), protocol.compute_kid(sig_der)
        if (enc_kid, sig_kid) != (record["enc_kid"], record["sig_kid"]) or enc_kid == sig_kid:
            raise UntrustedDevice(f"device {record.get('id')}: kids do not match its keys")
        if not protocol.verify_device_proof(sig_public, user_id, enc_kid, sig_kid, record["proof"]):
            raise UntrustedDevice(f"device {record.get('id')}: proof of possession fails")
        return DeviceInfo(
            id=int(record["id"]),
            user_id=user_id,
            username=username,
            name=str(record.get("name", "")),
            enc_kid=enc_kid,
            sig_kid=sig_kid,
            enc_public=enc_public,
            sig_public=sig_public,
            created=parse_time(record["created"]),
            revoked=parse_time(record.get("revoked")),
        )
    except (KeyError, TypeError, ValueError, protocol.ProtocolError) as exc:
        raise UntrustedDevice(f"device {record.get('id')}: malformed record ({exc})") from exc


class DeviceDirectory:
    """Caches checked devices per user and by kid; reports device-set changes.

    ``known`` maps username -> sorted signing kids last seen (persist it to carry the
    warning across runs); ``on_change`` is called with each ``DeviceSetChange``.
    """

    def __init__(
        self,
        session: ChatSession,
        *,
        known: dict[str, list[str]] | None = None,
        on_change: Callable[[DeviceSetChange], None] | None = None,
    ) -> None:
        self.session = session
        self.known: dict[str, list[str]] = dict(known or {})
        self.on_change = on_change
        self._by_user: dict[str, list[DeviceInfo]] = {}
        self._by_kid: dict[str, DeviceInfo] = {}
        self._pinned: dict[int, tuple[str, str]] = {}  # device id -> (enc_kid, sig_kid) first seen
        self.skipped: list[str] = []  # why records were refused, newest last

    def _pin(self, device: DeviceInfo) -> DeviceInfo:
        """The device, unless a device of this id was seen before with other keys (a server
        substituting a known device's keys): then ``UntrustedDevice``."""
        kids = (device.enc_kid, device.sig_kid)
        if self._pinned.setdefault(device.id, kids) != kids:
            raise UntrustedDevice(f"device {device.id}: its keys changed since first seen")
        return device

    async def devices_of(self, username: str, *, refresh: bool = False) -> list[DeviceInfo]:
        """The user's active, checked devices (cached unless ``refresh``).

        Records that fail the checks are left out (and noted in ``skipped``); an unknown
        user raises ``ChatApiError('not_found')``.
        """
        if refresh or username not in self._by_user:
            answer = await self.session.user_devices(username)
            owner = answer["user"]
            devices = []
            for record in answer["devices"]:
                try:
                    device = self._pin(check_device(record, owner["id"], owner["username"]))
                except UntrustedDevice as exc:
                    self.skipped.append(str(exc))
                    continue
                if device.revoked is None:
                    devices.append(device)
                    self._by_kid[device.sig_kid] = self._by_kid[device.enc_kid] = device
            self._by_user[username] = devices
            self._note_set(owner["username"], devices)
        return self._by_user[username]

    def forget(self, username: str) -> None:
        """Drop the cached devices of ``username`` (after a ``devices_changed`` frame)."""
        for device in self._by_user.pop(username, []):
            self._by_kid.pop(device.sig_kid, None)
            self._by_kid.pop(device.enc_kid, None)

    async def by_kid(self, kid: str) -> DeviceInfo:
        """The checked device holding ``kid`` (cached, else ``GET /api/keys/<kid>/``),
        revoked or not. ``UntrustedDevice`` if unknown or it fails the checks."""
        if kid in self._by_kid:
            return self._by_kid[kid]
        if not protocol.is_kid(kid):
            raise UntrustedDevice("not a kid")
        try:
            answer = await self.session.lookup_key(kid)
        except ChatApiError as exc:
            if exc.code == "not_found":
                raise UntrustedDevice(f"no device holds key {kid[:16]}") from exc
            raise
        owner = answer["user"]
        device = self._pin(check_device(answer["device"], owner["id"], owner["username"]))
        self._by_kid[device.sig_kid] = self._by_kid[device.enc_kid] = device
        return device

    async def signer(self, sig_kid: str, sender_id: int, created: datetime) -> DeviceInfo:
        """The device whose signing kid is ``sig_kid``, checked to belong to ``sender_id``
        and to have been active at ``created``; else ``UntrustedDevice``."""
        device = await self.by_kid(sig_kid)
        if device.sig_kid != sig_kid:
            raise UntrustedDevice("sig_kid names an encryption key")
        if device.user_id != sender_id:
            raise UntrustedDevice("the signing key belongs to another user")
        if not device.active_at(created) and device.revoked is None:
            # Cached before a revocation we may not know of: ask again once.
            self._by_kid.pop(sig_kid, None)
            device = await self.by_kid(sig_kid)
        if not device.active_at(created):
            raise UntrustedDevice("the signing device was not active when the message was made")
        known = self.known.get(device.username)
        if device.revoked is None and known is not None and sig_kid not in known:
            # A device of a known user we have not seen: refresh her set, which reports the
            # change (DeviceSetChange); one she does not list is refused.
            current = await self.devices_of(device.username, refresh=True)
            if sig_kid not in {d.sig_kid for d in current}:
                raise UntrustedDevice("the signing device is not among the sender's devices")
        return device

    def _note_set(self, username: str, devices: list[DeviceInfo]) -> None:
        current = sorted(d.sig_kid for d in devices)
        before = self.known.get(username)
        self.known[username] = current
        if before is None or before == current:
            return
        change = DeviceSetChange(
            username=username,
            added=tuple(k for k in current if k not in before),
            removed=tuple(k for k in before if k not in current),
        )
        if self.on_change is not None:
            self.on_change(change)


def fingerprint(kid: str) -> str:
    """A kid as groups of four hex digits, for reading aloud and comparing."""
    return " ".join(kid[i : i + 4] for i in range(0, len(kid), 4))
