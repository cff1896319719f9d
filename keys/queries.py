"""Read-side questions about the key registry that other layers ask."""

from __future__ import annotations

from django.db.models import Q

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
