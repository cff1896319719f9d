"""Whose identity this device accepted (PROTOCOL §7.4, §7.5), persisted per user id.

Pure decisions over identity kids; the directory fetches and checks the keys and tells
the book what the server shows. For each user the book keeps the accepted identity, the
person's "verified" mark, the identities accepted earlier, a pending identity change
(nothing is sent to that user until the person accepts it) and, while the user had no
identity, the signing kids of her v1 devices (§7.5: an upgrade signature by one of them
lets the first identity in without asking).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from . import protocol
from .errors import ChatError
from .events import TrustNotice
from .state import StateStore

ACCEPTED = "accepted"  # an identity is accepted and nothing is pending
CHANGED = "changed"  # an identity change waits for the person (sending is paused)
NOT_UPGRADED = "not_upgraded"  # seen without an identity: devices used as in v1
UNKNOWN = "unknown"  # never looked at


@dataclass
class Contact:
    """What this device decided about one user."""

    user_id: int
    username: str = ""
    id_kid: str | None = None
    verified: bool = False
    earlier: list[str] = field(default_factory=list)
    pending: dict | None = None  # {"id_kid": kid or None (listed without one)}
    v1_sig_kids: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.pending is not None:
            return CHANGED
        return ACCEPTED if self.id_kid is not None else NOT_UPGRADED

    @property
    def pending_kid(self) -> str | None:
        return None if self.pending is None else self.pending.get("id_kid")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Contact:
        return cls(**data)


class TrustBook:
    """Trust decisions of this device, stored in the ``trust`` section of ``store``.

    The device's own user is always known under the identity the device holds (a
    different one listed by the server is an identity change of her own account).
    """

    def __init__(
        self, store: StateStore, *, user_id: int, username: str, id_kid: str | None
    ) -> None:
        self.store = store
        self.user_id = user_id
        self.username = username
        self.set_own_identity(id_kid)

    def set_own_identity(self, id_kid: str | None) -> None:
        """This device holds ``id_kid`` (after setup, upgrade or linking)."""
        if id_kid is None:
            return
        own = self.contact(self.user_id) or Contact(self.user_id, self.username)
        if own.id_kid != id_kid or not own.verified or own.pending is not None:
            if own.id_kid not in (None, id_kid) and own.id_kid not in own.earlier:
                own.earlier.append(own.id_kid)
            own.id_kid, own.verified, own.pending = id_kid, True, None
            self._save(own)

    def contact(self, user_id: int) -> Contact | None:
        data = self.store.get("trust", user_id)
        return None if data is None else Contact.from_json(data)

    def status(self, user_id: int) -> str:
        contact = self.contact(user_id)
        return UNKNOWN if contact is None else contact.status

    def _save(self, contact: Contact) -> None:
        self.store.put("trust", contact.user_id, contact.to_json())
        if contact.username:
            self.store.put("names", contact.user_id, contact.username)

    # --- what the server shows -------------------------------------------------------------

    def v1_kids(self, user_id: int, username: str) -> list[str]:
        """Signing kids of the user's v1 devices this device saw before she had an identity
        (its own record, or the device sets a v1 client remembered by name)."""
        contact = self.contact(user_id)
        seen = list(contact.v1_sig_kids) if contact else []
        legacy = self.store.get("legacy", username) or []
        return seen + [kid for kid in legacy if kid not in seen and protocol.is_kid(kid)]

    def note_v1_devices(self, user_id: int, username: str, sig_kids: list[str]) -> None:
        """Remember the signing kids of a user listed without an identity (§7.5)."""
        contact = self.contact(user_id) or Contact(user_id, username)
        if contact.id_kid is not None or contact.pending is not None:
            return
        new = [kid for kid in sig_kids if kid not in contact.v1_sig_kids]
        if new or contact.username != username:
            contact.username = username
            contact.v1_sig_kids.extend(new)
            self._save(contact)

    def observe(
        self, user_id: int, username: str, id_kid: str | None, *, upgrade_ok: bool = False
    ) -> TrustNotice | None:
        """Take in the identity the server lists for a user (None: none) and return the
        notice it calls for, if any.

        The first identity of a user never seen with one is accepted (trust on first use),
        unless this device saw her v1 devices: then only with ``upgrade_ok`` (the §7.5
        upgrade signature verified under one of them), else it is an identity change.
        Any other identity than the accepted one, or none where one was accepted, is an
        identity change: pending until the person accepts it.
        """
        known = self.contact(user_id)
        contact = known or Contact(user_id, username)
        before = known.to_json() if known else None
        contact.username = username
        own = user_id == self.user_id
        notice = None
        if id_kid is not None and id_kid == contact.id_kid:
            contact.pending = None
        elif contact.pending is not None and contact.pending_kid == id_kid:
            pass  # already waiting for the person
        elif id_kid is None and contact.id_kid is None:
            contact.pending = None  # not upgraded (again): as in v1
        elif contact.id_kid is None and contact.pending is None and not own:
            if not self.v1_kids(user_id, username):
                contact.id_kid = id_kid  # trust on first use
            elif upgrade_ok:
                contact.id_kid = id_kid
                contact.v1_sig_kids = []
                notice = TrustNotice(
                    "identity_upgraded",
                    username,
                    user_id,
                    "made an identity key, signed by a device you knew",
                )
            else:
                contact.pending = {"id_kid": id_kid}
                notice = TrustNotice(
                    "identity_changed",
                    username,
                    user_id,
                    "has a new identity key that no device you knew signed",
                )
        else:
            contact.pending = {"id_kid": id_kid}
            detail = "is listed without an identity key" if id_kid is None else "changed"
            kind = "own_identity_changed" if own else "identity_changed"
            notice = TrustNotice(kind, username, user_id, f"identity key {detail}")
        if contact.to_json() != before:
            self._save(contact)
        return notice

    # --- the person's decisions ------------------------------------------------------------

    def accept(self, user_id: int) -> Contact:
        """Accept a pending identity change: the new identity becomes the accepted one
        (not verified), the old one is kept among the earlier ones."""
        contact = self.contact(user_id)
        if contact is None or contact.pending is None:
            raise ChatError("no identity change is waiting for you to accept")
        if contact.id_kid is not None and contact.id_kid not in contact.earlier:
            contact.earlier.append(contact.id_kid)
        contact.id_kid, contact.verified, contact.pending = contact.pending_kid, False, None
        contact.v1_sig_kids = []
        self._save(contact)
        return contact

    def set_verified(self, user_id: int, verified: bool = True) -> Contact:
        """Mark the accepted identity as verified (the safety numbers matched) or not."""
        contact = self.contact(user_id)
        if contact is None or contact.id_kid is None:
            raise ChatError("no identity of this user is accepted yet")
        if contact.pending is not None:
            raise ChatError("accept or refuse the identity change first")
        contact.verified = bool(verified)
        self._save(contact)
        return contact

    # --- hand-over to a linked device (§7.2) -----------------------------------------------

    def export(self) -> dict:
        """The trust state an ``id_wrap`` carries: accepted identities and verified marks."""
        identities = {}
        for key in self.store.keys("trust"):
            contact = Contact.from_json(self.store.get("trust", key))
            if contact.id_kid is not None:
                identities[str(contact.user_id)] = {
                    "id_kid": contact.id_kid,
                    "verified": contact.verified,
                }
        return {"identities": identities}

    def adopt(self, trust: dict) -> None:
        """Start from the approving device's decisions (unknown fields are ignored)."""
        protocol.check_trust_state(trust)
        for key, entry in trust["identities"].items():
            user_id = int(key)
            if user_id == self.user_id:
                continue
            contact = self.contact(user_id) or Contact(user_id, self.store.get("names", key) or "")
            contact.id_kid, contact.verified = entry["id_kid"], entry["verified"]
            contact.pending, contact.v1_sig_kids = None, []
            self._save(contact)
