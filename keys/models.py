"""The public-key registry: users' identity keys (PROTOCOL §7), their devices, each one
pair of RSA public keys certified by the identity (§1), and link requests (§7.2)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class IdentityQuerySet(models.QuerySet):
    def current(self):
        return self.filter(replaced__isnull=True)


class Identity(models.Model):
    """A user's identity key (RSA-PSS public key). At most one is current; identities
    replaced by a reset are kept (``replaced`` set) so old signatures still verify."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="identities"
    )
    id_spki = models.BinaryField()
    id_kid = models.CharField(max_length=64, unique=True)
    proof = models.TextField()
    #: ``{"sig_kid", "sig"}``: the §7.5 upgrade signature by a v1 device, or None.
    upgrade = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    replaced = models.DateTimeField(null=True, blank=True)

    objects = IdentityQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(replaced__isnull=True), name="one_current_identity"
            ),
        ]

    def __str__(self) -> str:
        return f"identity {self.id_kid[:16]}… of user {self.user_id}"

    @property
    def is_current(self) -> bool:
        return self.replaced is None


class DeviceQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked__isnull=True)


class Device(models.Model):
    """A key identity of a user: an encryption key (RSA-OAEP) and a signing key (RSA-PSS).

    Revoked devices are kept so that old signatures stay verifiable.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices"
    )
    name = models.CharField(max_length=100)
    enc_spki = models.BinaryField()
    sig_spki = models.BinaryField()
    enc_kid = models.CharField(max_length=64, unique=True)
    sig_kid = models.CharField(max_length=64, unique=True)
    proof = models.TextField()
    #: The identity's certificate of this device (§1); "" for a v1 device without one.
    cert = models.TextField(blank=True, default="")
    #: The identity that signed ``cert`` (None while uncertified).
    identity = models.ForeignKey(
        Identity, null=True, blank=True, on_delete=models.PROTECT, related_name="devices"
    )
    created = models.DateTimeField(default=timezone.now)
    revoked = models.DateTimeField(null=True, blank=True)
    #: When one of its sockets was last open (set at open, close and every heartbeat);
    #: None if it never connected (lane ops, for staff).
    last_seen = models.DateTimeField(null=True, blank=True)

    objects = DeviceQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["user", "revoked"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.enc_kid[:16]}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked is None


class LinkRequest(models.Model):
    """A new device's request to join its user's account (§7.2), pending until one of her
    devices approves it (registering the device) or denies it, or it expires."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    STATUS_CHOICES = [(PENDING, PENDING), (APPROVED, APPROVED), (DENIED, DENIED)]

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="link_requests"
    )
    name = models.CharField(max_length=100)
    enc_spki = models.BinaryField()
    sig_spki = models.BinaryField()
    enc_kid = models.CharField(max_length=64, db_index=True)
    sig_kid = models.CharField(max_length=64)
    proof = models.TextField()
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=PENDING)
    created = models.DateTimeField(default=timezone.now)
    expires = models.DateTimeField()
    #: The device registered (or certified, for a v1 device) by the approval.
    device = models.ForeignKey(
        Device, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: ``{"ek","iv","ct"}`` for the new device (§7.2 step 3), once approved.
    id_wrap = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["user", "status", "expires"])]

    def __str__(self) -> str:
        return f"link request {self.pk} of user {self.user_id} ({self.status})"
