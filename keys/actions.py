"""Every write to the key registry: identities, device registration with certificates,
certificates for v1 devices, link requests, and revocation (PROTOCOL §1, §4, §7)."""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.errors import ActionError
from accounts.models import User
from chatclient import protocol

from .models import Device, Identity, LinkRequest
from .queries import current_identity, kid_registered, own_uncertified_device
from .signals import (
    device_added,
    device_certified,
    device_revoked,
    identity_changed,
    link_request_created,
    link_request_done,
)

#: How long a link request waits for approval, and how long an approved or denied one
#: stays readable by the new device (from the approval or the creation).
LINK_REQUEST_TTL = timedelta(minutes=10)
#: Pending link requests a user may have at once.
MAX_PENDING_LINK_REQUESTS = 5


def decode_public_key(field: str, value: str) -> tuple[bytes, object]:
    """Base64 SPKI -> (DER, key): canonical base64 and a canonical RSA key, else refused."""
    try:
        der = protocol.b64decode(value)
    except protocol.ProtocolError as exc:
        raise ActionError("bad_request", f"{field} is not canonical base64.") from exc
    try:
        return der, protocol.import_public_key(der)
    except protocol.ProtocolError as exc:
        raise ActionError("invalid_key", f"{field}: {exc.detail}") from exc


def _verified(check, code: str, detail: str, *args) -> None:
    """Run a protocol check; malformed input is its `ProtocolError` code, False is `code`."""
    try:
        ok = check(*args)
    except protocol.ProtocolError as exc:
        raise ActionError(exc.code, f"{detail}: {exc.detail}") from exc
    if not ok:
        raise ActionError(code, f"{detail} does not verify.")


# --- identity keys (§7) -------------------------------------------------------------------


def set_identity(
    user, *, id_spki: str, proof: str, upgrade: dict | None = None, replace: bool = False
) -> tuple[Identity, bool]:
    """Set (or, with `replace`, reset) the user's identity key; returns (identity, created).

    The same key as the current one changes nothing (created False). Refuses
    `invalid_key`, `duplicate_key` (the kid is any device's or another identity's),
    `bad_proof`, `bad_signature` (an upgrade signature that is not by an active device of
    the user, §7.5) and `identity_exists` (another key is current and `replace` is not
    set). A replacement revokes every device of the user and denies her pending link
    requests; contacts are told (signal).
    """
    der, key = decode_public_key("id_spki", id_spki)
    id_kid = protocol.compute_kid(der)
    current = current_identity(user)
    if current is not None and current.id_kid == id_kid:
        return current, False
    if kid_registered(id_kid):
        raise ActionError("duplicate_key", "This key is already registered.")
    _verified(
        protocol.verify_identity_proof, "bad_proof", "The identity proof", key, user.pk, proof
    )
    if upgrade is not None:
        signer = Device.objects.active().filter(user=user, sig_kid=upgrade.get("sig_kid")).first()
        if signer is None:
            raise ActionError("bad_signature", "upgrade.sig_kid is not an active device of yours.")
        signer_key = protocol.import_public_key(bytes(signer.sig_spki))
        _verified(
            protocol.verify_identity_upgrade,
            "bad_signature",
            "The upgrade signature",
            signer_key,
            user.pk,
            id_kid,
            upgrade,
        )
    if current is not None and not replace:
        raise ActionError("identity_exists", "You have another identity key; reset to replace it.")
    try:
        with transaction.atomic():
            if current is not None:
                Identity.objects.filter(pk=current.pk).update(replaced=timezone.now())
                revoke_all_devices(user)
                LinkRequest.objects.filter(user=user, status=LinkRequest.PENDING).update(
                    status=LinkRequest.DENIED
                )
            identity = Identity.objects.create(
                user=user, id_spki=der, id_kid=id_kid, proof=proof, upgrade=upgrade
            )
    except IntegrityError as exc:  # a concurrent PUT of this or another identity
        raise ActionError("identity_exists", "Your identity changed meanwhile; try again.") from exc
    transaction.on_commit(lambda: identity_changed.send(sender=Identity, user=user))
    return identity, True


# --- devices (§1) ---------------------------------------------------------------------------


def check_device_keys(user, *, enc_spki: str, sig_spki: str, proof: str) -> tuple:
    """Both keys and the proof of possession, checked: (enc_der, sig_der, enc_kid, sig_kid).

    Refuses `bad_request` (base64), `invalid_key` (not RSA 2048/3072/4096 with e=65537,
    not canonical, both keys equal) and `bad_proof`.
    """
    enc_der, _ = decode_public_key("enc_spki", enc_spki)
    sig_der, sig_key = decode_public_key("sig_spki", sig_spki)
    if enc_der == sig_der:
        raise ActionError("invalid_key", "The encryption and signing keys must differ.")
    enc_kid, sig_kid = protocol.compute_kid(enc_der), protocol.compute_kid(sig_der)
    _verified(
        protocol.verify_device_proof,
        "bad_proof",
        "The proof of possession",
        sig_key,
        user.pk,
        enc_kid,
        sig_kid,
        proof,
    )
    return enc_der, sig_der, enc_kid, sig_kid


def check_cert(user, enc_kid: str, sig_kid: str, cert: str) -> Identity:
    """The current identity that `cert` certifies the two kids under, else `bad_cert`."""
    identity = current_identity(user)
    if identity is None:
        raise ActionError("bad_cert", "You have no identity key yet to certify devices.")
    id_key = protocol.import_public_key(bytes(identity.id_spki))
    try:
        ok = protocol.verify_device_cert(id_key, user.pk, enc_kid, sig_kid, cert)
    except protocol.ProtocolError as exc:
        raise ActionError("bad_cert", f"cert: {exc.detail}") from exc
    if not ok:
        raise ActionError("bad_cert", "The certificate does not verify under your identity.")
    return identity


def _lock_user(user) -> None:
    """Row-lock the user (PostgreSQL) so that counting her devices or link requests and
    adding one is not raced by another request of hers; SQLite's IMMEDIATE transactions
    already serialize writers."""
    list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))


def check_device_limit(user) -> None:
    """Refuse (`bad_request`) a new device when the user has MAX_DEVICES active ones."""
    if Device.objects.active().filter(user=user).count() >= settings.MAX_DEVICES:
        raise ActionError(
            "bad_request", f"You have {settings.MAX_DEVICES} active devices; revoke one first."
        )


def register_device(
    user, *, name: str, enc_spki: str, sig_spki: str, proof: str, cert: str
) -> Device:
    """Check both keys, the proof of possession and the identity's certificate, then
    store the device.

    Refuses what `check_device_keys` and `check_cert` refuse, `duplicate_key` (a kid any
    user holds, as device or identity key) and `bad_request` past MAX_DEVICES.
    """
    enc_der, sig_der, enc_kid, sig_kid = check_device_keys(
        user, enc_spki=enc_spki, sig_spki=sig_spki, proof=proof
    )
    if kid_registered(enc_kid) or kid_registered(sig_kid):
        raise ActionError("duplicate_key", "This key is already registered.")
    identity = check_cert(user, enc_kid, sig_kid, cert)
    try:
        with transaction.atomic():
            _lock_user(user)
            check_device_limit(user)
            device = Device.objects.create(
                user=user,
                name=name,
                enc_spki=enc_der,
                sig_spki=sig_der,
                enc_kid=enc_kid,
                sig_kid=sig_kid,
                proof=proof,
                cert=cert,
                identity=identity,
            )
    except IntegrityError as exc:  # a concurrent registration of the same key
        raise ActionError("duplicate_key", "This key is already registered.") from exc
    transaction.on_commit(lambda: device_added.send(sender=Device, device=device))
    return device


def certify_device(user, device_id: int, cert: str) -> tuple[Device, bool]:
    """Attach the current identity's `cert` to one of the user's registered devices
    (§7.5: a v1 device after its user's upgrade); returns (device, changed).

    Refuses `not_found` (no such device of hers), `bad_request` (revoked, or already
    certified with another cert) and what `check_cert` refuses. The same cert again
    changes nothing. Contacts are told (signal).
    """
    with transaction.atomic():
        device = Device.objects.select_for_update().filter(pk=device_id, user=user).first()
        if device is None:
            raise ActionError("not_found", "No such device of yours.")
        if device.revoked is not None:
            raise ActionError("bad_request", "This device is revoked.")
        identity = check_cert(user, device.enc_kid, device.sig_kid, cert)
        if device.cert:
            if device.cert == cert and device.identity_id == identity.pk:
                return device, False
            raise ActionError("bad_request", "This device is already certified.")
        device.cert, device.identity = cert, identity
        device.save(update_fields=["cert", "identity"])
        transaction.on_commit(lambda: device_certified.send(sender=Device, device=device))
    return device, True


# --- link requests (§7.2) -------------------------------------------------------------------


def delete_expired_link_requests() -> int:
    """Delete every link request whose `expires` has passed (pending, approved or denied);
    returns how many. Every link-request endpoint runs this."""
    expired = LinkRequest.objects.filter(expires__lte=timezone.now())
    return expired.delete()[0] if expired.exists() else 0  # a read first: polls stay reads


def link_request_of(user, request_id: int) -> LinkRequest:
    """The user's link request, after deleting expired ones; `not_found` for another
    user's or an unknown id, and for an expired one (its detail says so)."""
    link_request = LinkRequest.objects.select_related("device").filter(pk=request_id, user=user)
    link_request = link_request.first()
    delete_expired_link_requests()
    if link_request is None:
        raise ActionError("not_found", "No such link request of yours.")
    if link_request.expires <= timezone.now():
        raise ActionError("not_found", "This link request has expired.")
    return link_request


def pending_link_requests(user) -> list[LinkRequest]:
    """The user's pending, unexpired link requests, newest first (expired ones deleted)."""
    delete_expired_link_requests()
    return list(LinkRequest.objects.filter(user=user, status=LinkRequest.PENDING))


def create_link_request(user, *, name: str, enc_spki: str, sig_spki: str, proof: str):
    """A new device of the user asks to join (§7.2 step 1); valid for LINK_REQUEST_TTL.

    Refuses what `check_device_keys` refuses; `duplicate_key` for a kid that is
    registered (unless both kids are exactly one of her own active uncertified devices,
    §7.5) or held by a pending request; `bad_request` when she has no identity yet;
    `rate_limited` at MAX_PENDING_LINK_REQUESTS pending. Her devices are told (signal).
    """
    delete_expired_link_requests()
    enc_der, sig_der, enc_kid, sig_kid = check_device_keys(
        user, enc_spki=enc_spki, sig_spki=sig_spki, proof=proof
    )
    v1_device = own_uncertified_device(user, enc_kid, sig_kid)
    if v1_device is None and (kid_registered(enc_kid) or kid_registered(sig_kid)):
        raise ActionError("duplicate_key", "This key is already registered.")
    kids = [enc_kid, sig_kid]
    if LinkRequest.objects.filter(
        Q(enc_kid__in=kids) | Q(sig_kid__in=kids), status=LinkRequest.PENDING
    ).exists():
        raise ActionError(
            "duplicate_key", "A pending link request holds this key; read or cancel that one."
        )
    if current_identity(user) is None:
        raise ActionError("bad_request", "You have no identity key yet: set up a first device.")
    with transaction.atomic():
        _lock_user(user)
        pending = LinkRequest.objects.filter(user=user, status=LinkRequest.PENDING).count()
        if pending >= MAX_PENDING_LINK_REQUESTS:
            raise ActionError(
                "rate_limited",
                f"You have {MAX_PENDING_LINK_REQUESTS} pending link requests; "
                "approve, deny or wait for one.",
            )
        now = timezone.now()
        link_request = LinkRequest.objects.create(
            user=user,
            name=name,
            enc_spki=enc_der,
            sig_spki=sig_der,
            enc_kid=enc_kid,
            sig_kid=sig_kid,
            proof=proof,
            created=now,
            expires=now + LINK_REQUEST_TTL,
        )
        transaction.on_commit(
            lambda: link_request_created.send(sender=LinkRequest, link_request=link_request)
        )
    return link_request


def check_id_wrap(id_wrap: object, enc_spki: bytes) -> dict:
    """`id_wrap` if it is exactly ``{"ek","iv","ct"}`` in canonical base64 with a 12-byte
    `iv`, an `ek` as long as the new device's encryption modulus and a `ct` holding at
    least the GCM tag; else `bad_request` (§7.2 step 3)."""
    if not isinstance(id_wrap, dict) or set(id_wrap) != {"ek", "iv", "ct"}:
        raise ActionError("bad_request", 'id_wrap must be exactly {"ek", "iv", "ct"}.')
    modulus_bytes = protocol.import_public_key(enc_spki).size_in_bytes()
    try:
        ek = protocol.b64decode(id_wrap["ek"])
        protocol.b64decode(id_wrap["iv"], length=12)
        ct = protocol.b64decode(id_wrap["ct"])
    except protocol.ProtocolError as exc:
        raise ActionError("bad_request", f"id_wrap: {exc.detail}.") from exc
    if len(ek) != modulus_bytes:
        raise ActionError("bad_request", "id_wrap.ek is not wrapped for the new device's key.")
    if len(ct) < 16:
        raise ActionError("bad_request", "id_wrap.ct is shorter than the GCM tag.")
    return id_wrap


def approve_link_request(user, request_id: int, *, cert: str, id_wrap: object) -> Device:
    """Approve a pending link request (§7.2 step 3): register the new device with the
    request's keys, name and proof and `cert` — or, when the request's kids are one of the
    user's active uncertified devices, attach `cert` to it (§7.5) — and store `id_wrap` for
    it, in one transaction with the request's change (nothing is kept if any step fails).
    The approved request stays readable for LINK_REQUEST_TTL from now.

    Refuses `not_found` (not hers, expired, not pending), `bad_request` (`id_wrap`,
    MAX_DEVICES), `bad_cert` and `duplicate_key` (its keys were registered meanwhile).
    Her devices and contacts are told (signals).
    """
    link_request = link_request_of(user, request_id)
    if link_request.status != LinkRequest.PENDING:
        raise ActionError("not_found", f"This link request is {link_request.status} already.")
    check_id_wrap(id_wrap, bytes(link_request.enc_spki))
    enc_kid, sig_kid = link_request.enc_kid, link_request.sig_kid
    identity = check_cert(user, enc_kid, sig_kid, cert)
    v1_device = own_uncertified_device(user, enc_kid, sig_kid)
    if v1_device is None and (kid_registered(enc_kid) or kid_registered(sig_kid)):
        raise ActionError("duplicate_key", "This key is already registered.")
    try:
        with transaction.atomic():
            _lock_user(user)
            now = timezone.now()
            pending = LinkRequest.objects.select_for_update().filter(
                pk=link_request.pk, status=LinkRequest.PENDING, expires__gt=now
            )
            if not pending.exists():
                raise ActionError("not_found", "This link request is no longer pending.")
            if v1_device is not None:
                device = _attach_cert(v1_device, cert, identity)
            else:
                check_device_limit(user)
                device = Device.objects.create(
                    user=user,
                    name=link_request.name,
                    enc_spki=link_request.enc_spki,
                    sig_spki=link_request.sig_spki,
                    enc_kid=enc_kid,
                    sig_kid=sig_kid,
                    proof=link_request.proof,
                    cert=cert,
                    identity=identity,
                )
            link_request.status, link_request.device = LinkRequest.APPROVED, device
            link_request.id_wrap, link_request.expires = id_wrap, now + LINK_REQUEST_TTL
            link_request.save(update_fields=["status", "device", "id_wrap", "expires"])
    except IntegrityError as exc:
        if kid_registered(enc_kid) or kid_registered(sig_kid):  # registered concurrently
            raise ActionError("duplicate_key", "This key is already registered.") from exc
        raise
    news = device_certified if v1_device is not None else device_added
    transaction.on_commit(lambda: news.send(sender=Device, device=device))
    transaction.on_commit(
        lambda: link_request_done.send(sender=LinkRequest, link_request=link_request)
    )
    return device


def _attach_cert(device: Device, cert: str, identity: Identity) -> Device:
    """Certify a v1 device inside the approval's transaction; `duplicate_key` if it was
    revoked or certified meanwhile (its keys are then taken)."""
    changed = Device.objects.filter(pk=device.pk, revoked__isnull=True, cert="").update(
        cert=cert, identity=identity
    )
    if not changed:
        raise ActionError("duplicate_key", "This key is already registered.")
    device.cert, device.identity = cert, identity
    return device


def deny_link_request(user, request_id: int) -> None:
    """Deny (her devices) or cancel (the new device) a pending request: it turns `denied`,
    stays readable until it expires, and her devices are told (signal). An approved or
    denied request is deleted instead (the new device has read it: its `id_wrap` goes)."""
    link_request = link_request_of(user, request_id)
    if link_request.status != LinkRequest.PENDING:
        link_request.delete()
        return
    denied = LinkRequest.objects.filter(pk=link_request.pk, status=LinkRequest.PENDING).update(
        status=LinkRequest.DENIED
    )
    if denied:
        link_request.status = LinkRequest.DENIED
        transaction.on_commit(
            lambda: link_request_done.send(sender=LinkRequest, link_request=link_request)
        )


def revoke_device(device: Device) -> None:
    """Revoke a device (idempotent): its sockets close and members are told (signal)."""
    if device.revoked is not None:
        return
    device.revoked = timezone.now()
    device.save(update_fields=["revoked"])
    transaction.on_commit(lambda: device_revoked.send(sender=Device, device=device))


def revoke_all_devices(user) -> int:
    """Revoke every active device of a user; returns how many were revoked."""
    devices = list(Device.objects.active().filter(user=user))
    for device in devices:
        revoke_device(device)
    return len(devices)


def mark_devices_seen(device_ids, when=None) -> int:
    """Set `last_seen` of these devices (ids or a values_list queryset) to `when` (now)."""
    return Device.objects.filter(pk__in=device_ids).update(last_seen=when or timezone.now())
