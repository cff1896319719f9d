"""Conversations, memberships, ciphertext messages and live connections."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Conversation(models.Model):
    """A direct (one per pair of users) or group conversation.

    ``last_seq`` is the seq of the newest message; the next message takes ``last_seq + 1``
    under a row lock, so seqs are gapless.
    """

    DIRECT = "direct"
    GROUP = "group"
    KIND_CHOICES = [(DIRECT, "direct"), (GROUP, "group")]

    kind = models.CharField(max_length=10, choices=KIND_CHOICES)
    title = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 (PROTOCOL: null)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: "<low user id>:<high user id>" for direct conversations; makes them unique per pair.
    direct_key = models.CharField(max_length=50, null=True, blank=True, unique=True)  # noqa: DJ001 (unique)
    created = models.DateTimeField(default=timezone.now)
    last_seq = models.PositiveBigIntegerField(default=0)
    last_activity = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_activity"]

    def __str__(self) -> str:
        return self.title or f"{self.kind} #{self.pk}"


class MembershipQuerySet(models.QuerySet):
    def current(self):
        return self.filter(left_seq__isnull=True)


class Membership(models.Model):
    """A user's place in a conversation and her read mark.

    A member who leaves or is removed keeps the row with ``left_seq`` set: she may still
    read the history up to that seq, and nothing after it.
    """

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    joined = models.DateTimeField(default=timezone.now)
    read_up_to = models.PositiveBigIntegerField(default=0)
    left_seq = models.PositiveBigIntegerField(null=True, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "user"], name="one_membership_per_user"
            ),
        ]
        indexes = [models.Index(fields=["user", "left_seq"])]

    def __str__(self) -> str:
        return f"user {self.user_id} in {self.conversation_id}"

    @property
    def is_current(self) -> bool:
        return self.left_seq is None


class Message(models.Model):
    """One sealed envelope as the sender made it; the server cannot read it."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    seq = models.PositiveBigIntegerField()
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    sender_device = models.ForeignKey("keys.Device", on_delete=models.PROTECT, related_name="+")
    client_msg_id = models.CharField(max_length=36)
    created = models.DateTimeField(default=timezone.now)
    envelope = models.JSONField()
    size = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="gapless_seq_unique"),
            models.UniqueConstraint(fields=["sender", "client_msg_id"], name="idempotent_send"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} in {self.conversation_id}"


class Connection(models.Model):
    """One open WebSocket, for presence across processes.

    ``seen`` is refreshed by the serving process; rows of a crashed process go stale and
    stop counting after ``PRESENCE_STALE_SECONDS``.
    """

    channel_name = models.CharField(max_length=200, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey("keys.Device", on_delete=models.CASCADE, related_name="+")
    worker = models.CharField(max_length=32, db_index=True)
    opened = models.DateTimeField(default=timezone.now)
    seen = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.channel_name} (user {self.user_id})"
