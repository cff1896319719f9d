"""Conversations, memberships, ciphertext messages and live connections."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import User


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
    #: A group's own id (§8), made by its creator; None for direct conversations and for
    #: v1 groups until their owner posts record 0.
    gid = models.UUIDField(null=True, blank=True, unique=True)
    #: n and hash of the last roster record (None / "" while there is no roster).
    roster_n = models.PositiveBigIntegerField(null=True, blank=True)
    roster_hash = models.CharField(max_length=64, blank=True, default="")

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
    read the history up to that seq, and nothing after it. A group's memberships change
    only with its roster (§8), direct conversations' never.
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
    #: The n of the roster record by which she last joined (§8; the owner rule after the
    #: owner leaves); None in a direct conversation and in a group without a roster.
    joined_n = models.PositiveBigIntegerField(null=True, blank=True)
    #: A message request for her (a direct conversation someone she never wrote to
    #: started): True until she accepts it or sends in it (see `actions.requests`).
    request = models.BooleanField(default=False)
    #: She deleted (declined) the request when it stood at this seq: it is left out of her
    #: list until a newer message arrives. None when she never declined it.
    declined_seq = models.PositiveBigIntegerField(null=True, blank=True)

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


class Block(models.Model):
    """`blocker` blocked `blocked`: no direct conversation, no adding to a group, and no
    presence, typing or read frames between them, either way (see `actions.requests`)."""

    blocker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocks_made"
    )
    blocked = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocks_received"
    )
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blocker", "blocked"], name="one_block_per_pair"),
        ]
        indexes = [models.Index(fields=["blocked", "blocker"], name="block_by_blocked")]

    def __str__(self) -> str:
        return f"user {self.blocker_id} blocks user {self.blocked_id}"


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
    envelope = models.JSONField(null=True)
    size = models.PositiveIntegerField(default=0)
    #: The sending device's counter (§2); None for a v1 envelope.
    n = models.PositiveBigIntegerField(null=True, blank=True)
    #: Ids of the blobs (§10.2) this message named when it was sent, in the sender's order.
    blob_ids = models.JSONField(default=list, blank=True)
    #: Taken back by its sender (§10.1): the envelope is gone (null), the seq stays.
    deleted = models.BooleanField(default=False)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="gapless_seq_unique"),
            models.UniqueConstraint(fields=["sender", "client_msg_id"], name="idempotent_send"),
        ]
        indexes = [
            models.Index(fields=["conversation", "sender_device", "n"], name="counter_by_device"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} in {self.conversation_id}"


class Blob(models.Model):
    """One encrypted attachment (§10.2) as uploaded: its bytes live in the `blobs`
    storage under `storage_name(id)`; the server knows only its padded size.

    Unnamed (`message` None) until its uploader's message names it; then it is served to
    that message's readers and lives as long as the message is not taken back.
    """

    id = models.CharField(max_length=22, primary_key=True)
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blobs"
    )
    size = models.PositiveBigIntegerField()
    created = models.DateTimeField(default=timezone.now, db_index=True)
    message = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="blobs"
    )

    class Meta:
        indexes = [models.Index(fields=["uploader", "message"], name="blob_by_uploader")]

    def __str__(self) -> str:
        return f"blob {self.id} ({self.size} bytes)"


class BlobUsage(User):
    """A user seen from her attachments (the admin's per-user blob count and bytes)."""

    class Meta:
        proxy = True
        verbose_name = "attachment storage of a user"
        verbose_name_plural = "attachment storage per user"


class RosterRecord(models.Model):
    """One signed record of a group's roster (§8), as its maker sent it; the chain
    ``conversation.roster_n`` / ``roster_hash`` ends at the last one."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="roster_records"
    )
    n = models.PositiveBigIntegerField()
    prev = models.CharField(max_length=64)
    op = models.CharField(max_length=10)
    subjects = models.JSONField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 (PROTOCOL: null)
    sig_kid = models.CharField(max_length=64)
    sig = models.TextField()
    hash = models.CharField(max_length=64)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["conversation", "n"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "n"], name="one_record_per_n"),
        ]

    def __str__(self) -> str:
        return f"record {self.n} ({self.op}) of {self.conversation_id}"


class HistoryKey(models.Model):
    """A content key of a stored message wrapped for a linked device (§7.3) by another
    device of the same user; served as that device's entry in the envelope's ``keys``."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="history_keys")
    device = models.ForeignKey("keys.Device", on_delete=models.CASCADE, related_name="+")
    ek = models.TextField()
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "device"], name="one_history_key"),
        ]

    def __str__(self) -> str:
        return f"history key of message {self.message_id} for device {self.device_id}"


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
    # Which process holds the socket, for staff and for cleanup (lane ops, 0007). Nullable or
    # with a database default, so that workers of the release before still insert rows.
    host = models.CharField(max_length=255, blank=True, db_default="")
    port = models.PositiveIntegerField(null=True, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.channel_name} (user {self.user_id})"
