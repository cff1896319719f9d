"""Read-side questions about the key registry that other layers ask."""

from __future__ import annotations

from django.db.models import Q

from accounts.errors import ActionError

from .models import Device, Identity


def current_identity(user) -> Identity | None:
    """The user's current identity key, or None (not upgraded, or never set up)."""
    return Identity.objects.current().filter(user=user).first()


def certified_signing_device(user_id: int, sig_kid: str) -> Device | None:
    """The user's active device holding ``sig_kid`` if her current identity certified it
    (what the server requires of a roster record's signer, §8), else None."""
    return (
        Device.objects.active()
        .filter(
            user_id=user_id,
            sig_kid=sig_kid,
            identity__user_id=user_id,
            identity__replaced__isnull=True,
        )
        .exclude(cert="")
        .first()
    )


def kid_registered(kid: str) -> bool:
    """Whether a kid is taken by any device key or identity key (one key, one kid)."""
    return (
        Device.objects.filter(Q(enc_kid=kid) | Q(sig_kid=kid)).exists()
        or Identity.objects.filter(id_kid=kid).exists()
    )


def own_uncertified_device(user, enc_kid: str, sig_kid: str) -> Device | None:
    """The user's active device without a cert holding exactly these two kids: a v1 device
    that may link itself to her identity with its existing keys (§7.5)."""
    return (
        Device.objects.active().filter(user=user, enc_kid=enc_kid, sig_kid=sig_kid, cert="").first()
    )


def acting_device(user, header: str | None) -> Device | None:
    """Which device of the user acts, from the ``X-Device-Id`` header (our addition to the
    session-only REST of PROTOCOL), for approvals and history keys.

    With the header: her active device of that id, else `forbidden` (a revoked device is
    refused this way). Without: None, when she has an active device certified by her
    current identity; else `forbidden`.
    """
    if header is not None:
        device = None
        if header.isascii() and header.isdigit() and len(header) <= 18:
            device = Device.objects.active().filter(pk=int(header), user=user).first()
        if device is None:
            raise ActionError("forbidden", "X-Device-Id does not name an active device of yours.")
        return device
    certified = (
        Device.objects.active()
        .filter(user=user, identity__user=user, identity__replaced__isnull=True)
        .exclude(cert="")
    )
    if not certified.exists():
        raise ActionError("forbidden", "Only an active certified device of yours may do this.")
    return None
