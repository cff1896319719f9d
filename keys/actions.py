"""Every write to the device registry: register and revoke (PROTOCOL §1, §4)."""

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.errors import ActionError
from chatclient import protocol

from .models import Device
from .signals import device_added, device_revoked


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


def register_device(user, *, name: str, enc_spki: str, sig_spki: str, proof: str) -> Device:
    """Check both keys and the proof of possession, then store the device.

    Refuses: `bad_request` (base64), `invalid_key` (not RSA 2048/3072/4096 with e=65537,
    not canonical, both keys equal), `bad_proof`, `duplicate_key` (a kid any user holds).
    """
    enc_der, _ = decode_public_key("enc_spki", enc_spki)
    sig_der, sig_key = decode_public_key("sig_spki", sig_spki)
    if enc_der == sig_der:
        raise ActionError("invalid_key", "The encryption and signing keys must differ.")
    enc_kid, sig_kid = protocol.compute_kid(enc_der), protocol.compute_kid(sig_der)
    try:
        verified = protocol.verify_device_proof(sig_key, user.pk, enc_kid, sig_kid, proof)
    except protocol.ProtocolError as exc:
        raise ActionError(exc.code, f"proof: {exc.detail}") from exc
    if not verified:
        raise ActionError("bad_proof", "The proof of possession does not verify.")
    kids = [enc_kid, sig_kid]
    if Device.objects.filter(Q(enc_kid__in=kids) | Q(sig_kid__in=kids)).exists():
        raise ActionError("duplicate_key", "This key is already registered.")
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
