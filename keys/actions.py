"""Every write to the key registry: identities, device registration with certificates,
and revocation (PROTOCOL §1, §4, §7)."""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import ActionError
from chatclient import protocol

from .models import Device, Identity, LinkRequest
from .queries import current_identity, kid_registered
from .signals import device_added, device_revoked, identity_changed


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
    check_device_limit(user)
    try:
        with transaction.atomic():
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
