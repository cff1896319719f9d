"""Other users' identities and devices, fetched from the server and checked against what
this device trusts (PROTOCOL §1, §7.4).

Every record is checked before use: a device's two keys import as acceptable RSA keys,
each kid is the SHA-256 of its SPKI and the proof of possession verifies for its owner;
an identity's kid is its key's and its proof verifies. The ``TrustBook`` decides which
identity is accepted; a device counts only when its ``cert`` verifies under that
identity (or, for a user who never had one, as in v1). The directory answers the three
questions the client asks: whom to encrypt to (``recipients_of``), whether a message's
signing device may speak for its sender (``sender_key``) and which key signs a roster
record (``record_signer``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from Crypto.PublicKey.RSA import RsaKey

from . import protocol
from .errors import ChatApiError, UntrustedDevice, UntrustedIdentity
from .events import EARLIER_IDENTITY, NOT_UPGRADED, TrustNotice
from .session import ChatSession
from .trust import ACCEPTED, CHANGED, TrustBook


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time with ``Z`` as an aware datetime (None stays None)."""
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class DeviceInfo:
    """One device's checked public keys, owner and cert (unchecked: see ``certifies``)."""

    id: int
    user_id: int
    username: str
    name: str
    enc_kid: str
    sig_kid: str
    enc_public: RsaKey
    sig_public: RsaKey
    cert: str | None
    created: datetime
    revoked: datetime | None

    def active_at(self, moment: datetime) -> bool:
        """Whether the device existed and was not yet revoked at ``moment``."""
        return self.created <= moment and (self.revoked is None or moment <= self.revoked)


@dataclass(frozen=True)
class IdentityInfo:
    """One checked identity key of a user (current, or ``replaced`` at some time)."""

    user_id: int
    id_kid: str
    public: RsaKey
    upgrade: dict | None
    replaced: str | None = None


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
        cert = record.get("cert")
        return DeviceInfo(
            id=int(record["id"]),
            user_id=user_id,
            username=username,
            name=str(record.get("name", "")),
            enc_kid=enc_kid,
            sig_kid=sig_kid,
            enc_public=enc_public,
            sig_public=sig_public,
            cert=cert if isinstance(cert, str) and cert else None,
            created=parse_time(record["created"]),
            revoked=parse_time(record.get("revoked")),
        )
    except (KeyError, TypeError, ValueError, protocol.ProtocolError) as exc:
        raise UntrustedDevice(f"device {record.get('id')}: malformed record ({exc})") from exc


def check_identity(record: dict, user_id: int) -> IdentityInfo:
    """Check an identity record of §4 (key, kid, proof); ``UntrustedIdentity`` if it fails."""
    try:
        der = protocol.b64decode(record["id_spki"])
        public = protocol.import_public_key(der)
        if protocol.compute_kid(der) != record["id_kid"]:
            raise UntrustedIdentity("the identity's kid is not its key's")
        if not protocol.verify_identity_proof(public, user_id, record["proof"]):
            raise UntrustedIdentity("the identity's proof does not verify")
        upgrade = record.get("upgrade")
        return IdentityInfo(
            user_id=user_id,
            id_kid=record["id_kid"],
            public=public,
            upgrade=upgrade if isinstance(upgrade, dict) else None,
            replaced=record.get("replaced"),
        )
    except (KeyError, TypeError, ValueError, protocol.ProtocolError) as exc:
        raise UntrustedIdentity(f"malformed identity record ({exc})") from exc


def certifies(identity: IdentityInfo, device: DeviceInfo) -> bool:
    """Whether ``device.cert`` verifies under ``identity`` for the device's owner and kids."""
    if device.cert is None or identity.user_id != device.user_id:
        return False
    try:
        return protocol.verify_device_cert(
            identity.public, device.user_id, device.enc_kid, device.sig_kid, device.cert
        )
    except protocol.ProtocolError:
        return False


@dataclass
class UserView:
    """What the server lists for one user, checked: identities and active devices."""

    user_id: int
    username: str
    identity: IdentityInfo | None
    previous: list[IdentityInfo]
    devices: list[DeviceInfo]
    identity_error: str | None = None
    refused: list[str] = field(default_factory=list)

    def identity_by_kid(self, id_kid: str | None) -> IdentityInfo | None:
        for identity in [self.identity, *self.previous]:
            if identity is not None and identity.id_kid == id_kid:
                return identity
        return None


@dataclass(frozen=True)
class Recipients:
    """Encryption keys of every device a message may be sealed for, and the problems
    that pause sending (any problem: send nothing)."""

    keys: dict[str, RsaKey]
    problems: list[TrustNotice]


@dataclass(frozen=True)
class RecordKey:
    """The key that may sign a roster record of a user (None: none may), whether the
    only device that could is certified by an identity change not accepted yet, and the
    author's username."""

    key: RsaKey | None
    waiting: bool
    username: str


@dataclass(frozen=True)
class Signer:
    """The checked device that signed a message, and how to mark it (``note``)."""

    device: DeviceInfo
    note: str | None


class Directory:
    """Checked identities and devices per user, cached until ``forget``.

    ``on_notice`` gets each ``TrustNotice`` once per process (identity changes from the
    trust book, devices without a valid cert).
    """

    def __init__(
        self,
        session: ChatSession,
        trust: TrustBook,
        *,
        on_notice: Callable[[TrustNotice], None] | None = None,
    ) -> None:
        self.session = session
        self.trust = trust
        self.on_notice = on_notice
        self._views: dict[str, UserView] = {}
        self._by_kid: dict[str, DeviceInfo] = {}
        self._pinned: dict[int, tuple[str, str]] = {}  # device id -> (enc_kid, sig_kid)
        self._told: set[tuple] = set()
        self.skipped: list[str] = []  # why records were refused, newest last

    def _notify(self, notice: TrustNotice) -> None:
        if notice.kind.endswith("identity_changed"):  # once per change, whoever saw it
            contact = self.trust.contact(notice.user_id)
            key = (notice.kind, notice.user_id, contact.pending_kid if contact else None)
        else:
            key = (notice.kind, notice.user_id, notice.detail)
        if key not in self._told:
            self._told.add(key)
            if self.on_notice is not None:
                self.on_notice(notice)

    def _pin(self, device: DeviceInfo) -> DeviceInfo:
        """The device, unless a device of this id was seen before with other keys (a server
        substituting a known device's keys): then ``UntrustedDevice``."""
        kids = (device.enc_kid, device.sig_kid)
        if self._pinned.setdefault(device.id, kids) != kids:
            raise UntrustedDevice(f"device {device.id}: its keys changed since first seen")
        return device

    # --- fetching --------------------------------------------------------------------------

    async def user(self, username: str, *, refresh: bool = False) -> UserView:
        """The user's checked identities and active devices (cached unless ``refresh``); the
        trust book takes in the identity listed. An unknown user is
        ``ChatApiError('not_found')``."""
        if not refresh and username in self._views:
            return self._views[username]
        identity_answer = await self.session.user_identity(username)
        devices_answer = await self.session.user_devices(username)
        owner = identity_answer["user"]
        user_id, name = owner["id"], owner["username"]
        if devices_answer["user"]["id"] != user_id:
            raise UntrustedIdentity("the server named two users for one name")
        view = UserView(user_id, name, None, [], [])
        try:
            if identity_answer.get("identity") is not None:
                view.identity = check_identity(identity_answer["identity"], user_id)
        except UntrustedIdentity as exc:
            view.identity_error = str(exc)
        for record in identity_answer.get("previous") or []:
            try:
                view.previous.append(check_identity(record, user_id))
            except UntrustedIdentity as exc:
                view.refused.append(f"earlier identity: {exc}")
        for record in devices_answer["devices"]:
            try:
                device = self._pin(check_device(record, user_id, name))
            except UntrustedDevice as exc:
                view.refused.append(str(exc))
                continue
            if device.revoked is None:
                view.devices.append(device)
                self._by_kid[device.sig_kid] = self._by_kid[device.enc_kid] = device
        self.skipped.extend(view.refused)
        if view.identity_error is None:
            upgrade_ok = await self._upgrade_verifies(view)
            kid = view.identity.id_kid if view.identity else None
            notice = self.trust.observe(user_id, name, kid, upgrade_ok=upgrade_ok)
            if notice is not None:
                self._notify(notice)
            if view.identity is None:
                self.trust.note_v1_devices(user_id, name, [d.sig_kid for d in view.devices])
        self._views[username] = view
        for problem in self._problems(view, self.usable(view)):
            self._notify(problem)
        return view

    async def _upgrade_verifies(self, view: UserView) -> bool:
        """Whether the listed identity carries a §7.5 upgrade signature by a v1 device of
        the user that this device saw before she had an identity."""
        identity = view.identity
        if identity is None or identity.upgrade is None:
            return False
        if self.trust.status(view.user_id) not in ("unknown", "not_upgraded"):
            return False
        sig_kid = identity.upgrade.get("sig_kid")
        if sig_kid not in self.trust.v1_kids(view.user_id, view.username):
            return False
        try:
            device = await self.by_kid(sig_kid)
            return device.user_id == view.user_id and protocol.verify_identity_upgrade(
                device.sig_public, view.user_id, identity.id_kid, identity.upgrade
            )
        except (UntrustedDevice, protocol.ProtocolError):
            return False

    def forget(self, username: str) -> None:
        """Drop the cached view of ``username`` (after a ``devices_changed`` frame)."""
        view = self._views.pop(username, None)
        for device in view.devices if view else []:
            self._by_kid.pop(device.sig_kid, None)
            self._by_kid.pop(device.enc_kid, None)

    async def by_kid(self, kid: str) -> DeviceInfo:
        """The proof-checked device holding ``kid`` (cached, else ``GET /api/keys/<kid>/``),
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

    # --- what may be used ------------------------------------------------------------------

    def _accepted(self, view: UserView) -> IdentityInfo | None:
        contact = self.trust.contact(view.user_id)
        if contact is None or contact.status != ACCEPTED:
            return None
        return view.identity_by_kid(contact.id_kid)

    def usable(self, view: UserView) -> list[DeviceInfo]:
        """The user's active devices this device may encrypt to: those her accepted
        identity certified (all of them for a user who never had an identity)."""
        if view.identity_error is not None:
            return []
        status = self.trust.status(view.user_id)
        if status == "not_upgraded":
            return list(view.devices)
        accepted = self._accepted(view)
        if accepted is None or view.identity is not accepted:
            return []
        return [device for device in view.devices if certifies(accepted, device)]

    def _problems(self, view: UserView, usable: list[DeviceInfo]) -> list[TrustNotice]:
        own = view.user_id == self.trust.user_id
        if view.identity_error is not None:
            return [TrustNotice("bad_identity", view.username, view.user_id, view.identity_error)]
        contact = self.trust.contact(view.user_id)
        if contact is not None and contact.status == CHANGED:
            kind = "own_identity_changed" if own else "identity_changed"
            detail = (
                "is listed without an identity key"
                if contact.pending_kid is None
                else "changed its identity key: accept it to send again"
            )
            return [TrustNotice(kind, view.username, view.user_id, detail)]
        kind = "own_uncertified_device" if own else "uncertified_device"
        return [
            TrustNotice(
                kind,
                view.username,
                view.user_id,
                f"device {device.id} ({device.name}) has no valid certificate",
            )
            for device in view.devices
            if device not in usable
        ]

    async def recipients_of(self, usernames: list[str], *, refresh: bool = False) -> Recipients:
        """The encryption keys of every device of these users this device may encrypt to,
        and any problem that pauses sending (an identity change, a listed device without
        a valid cert, a bad identity record)."""
        keys: dict[str, RsaKey] = {}
        problems: list[TrustNotice] = []
        for username in sorted(set(usernames)):
            view = await self.user(username, refresh=refresh)
            usable = self.usable(view)
            problems.extend(self._problems(view, usable))
            keys.update({device.enc_kid: device.enc_public for device in usable})
        return Recipients(keys, problems)

    async def sender_key(self, message: dict) -> Signer:
        """The device that signed ``message``, checked: it holds the envelope's ``sig_kid``,
        is the message's ``sender_device`` of ``sender_id``, was active at ``created`` and
        is certified by the sender's accepted identity (or one she had before). A sender who
        never had an identity is checked as in v1 (note ``not_upgraded``); a v1 envelope
        may also come from a v1 device this client saw before her upgrade. Anything else
        raises ``UntrustedDevice``."""
        envelope = message["envelope"]
        sig_kid, sender_id = envelope["sig_kid"], message["sender_id"]
        created = parse_time(message["created"])
        device = await self.by_kid(sig_kid)
        if device.sig_kid != sig_kid:
            raise UntrustedDevice("sig_kid names an encryption key")
        if device.user_id != sender_id:
            raise UntrustedDevice("the signing key belongs to another user")
        if device.id != message["sender_device"]:
            raise UntrustedDevice("sender_device is not the signing device")
        if not device.active_at(created) and device.revoked is None:
            # Cached before a revocation we may not know of: ask again once.
            self._by_kid.pop(sig_kid, None)
            device = await self.by_kid(sig_kid)
        if not device.active_at(created):
            raise UntrustedDevice("the signing device was not active when the message was made")
        note = await self._vouch(device, v1=envelope.get("v") == 1)
        return Signer(device, note)

    async def _vouch(self, device: DeviceInfo, *, v1: bool) -> str | None:
        """The note for a message signed by ``device``; ``UntrustedDevice`` if its owner's
        trusted identities do not certify it (the view is fetched again once)."""
        for attempt in range(2):
            view = await self.user(device.username, refresh=attempt > 0)
            if view.user_id != device.user_id:
                raise UntrustedDevice("the signing device's owner is not the listed user")
            contact = self.trust.contact(view.user_id)
            if view.identity_error is None and contact is not None:
                if contact.status == "not_upgraded":
                    return NOT_UPGRADED
                trusted = [contact.id_kid, *contact.earlier]
                if any(
                    (identity := view.identity_by_kid(kid)) and certifies(identity, device)
                    for kid in trusted
                ):
                    return None
                if v1 and device.sig_kid in self.trust.v1_kids(view.user_id, view.username):
                    return None
                if any(certifies(identity, device) for identity in view.previous):
                    return EARLIER_IDENTITY
                pending = view.identity_by_kid(contact.pending_kid)
                if pending is not None and certifies(pending, device):
                    raise UntrustedDevice(
                        f"signed under {device.username}'s new identity key, which you have "
                        "not accepted"
                    )
        raise UntrustedDevice(
            f"the signing device is not certified by {device.username}'s identity key"
        )

    async def record_signer(self, user_id: int, sig_kid: str) -> RecordKey:
        """For a roster record by ``user_id``: the signing key of her device holding
        ``sig_kid`` if her accepted identity, or one she had before, certified it (revoked
        since or not). ``waiting`` says the device is certified only by an identity change
        the person has not accepted yet (the record waits for her, §7.4)."""
        try:
            device = await self.by_kid(sig_kid)
        except UntrustedDevice:
            return RecordKey(None, False, "")
        if device.user_id != user_id or device.sig_kid != sig_kid:
            return RecordKey(None, False, "")
        for attempt in range(2):
            view = await self.user(device.username, refresh=attempt > 0)
            contact = self.trust.contact(view.user_id)
            if view.user_id != user_id or view.identity_error is not None or contact is None:
                return RecordKey(None, False, device.username)
            trusted = [view.identity_by_kid(kid) for kid in (contact.id_kid, *contact.earlier)]
            if any(
                identity and certifies(identity, device) for identity in trusted + view.previous
            ):
                return RecordKey(device.sig_public, False, device.username)
            pending = view.identity_by_kid(contact.pending_kid)
            if pending is not None and certifies(pending, device):
                return RecordKey(None, True, device.username)
        return RecordKey(None, False, device.username)


def fingerprint(kid: str) -> str:
    """A kid as groups of four hex digits, for reading aloud and comparing."""
    return " ".join(kid[i : i + 4] for i in range(0, len(kid), 4))
