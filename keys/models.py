"""The device registry: each device is one pair of RSA public keys (PROTOCOL §1)."""

from django.conf import settings
from django.db import models
from django.utils import timezone


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
    created = models.DateTimeField(default=timezone.now)
    revoked = models.DateTimeField(null=True, blank=True)

    objects = DeviceQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["user", "revoked"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.enc_kid[:16]}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked is None
