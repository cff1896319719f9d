"""Staff admin of conversations and messages, as metadata only.

The server holds ciphertext it cannot read; the admin shows who, where, which seq, how
big and when, and never the envelope (it is not even loaded from the database).
"""

from datetime import timedelta

from django.contrib import admin
from django.db.models import (
    BigIntegerField,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Subquery,
    Sum,
)
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from accounts.admin import ReadOnlyAdminMixin
from accounts.models import User
from keys.admin import UserWithDevicesAdmin

from . import presence
from .models import (
    Blob,
    BlobUsage,
    Block,
    Connection,
    Conversation,
    Membership,
    Message,
    RosterRecord,
)


class MembershipInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Membership
    fields = ("user", "joined", "joined_n", "read_up_to", "left_seq")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("joined", "id")


class RosterRecordInline(ReadOnlyAdminMixin, admin.TabularInline):
    """A group's signed roster records (§8): who did what, and when."""

    model = RosterRecord
    fields = ("n", "op", "by", "subjects", "title", "sig_kid", "hash", "created")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("n",)


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "title",
        "member_list",
        "message_count",
        "last_activity",
        "created",
    )
    list_filter = ("kind",)
    search_fields = ("title", "memberships__user__username")
    fields = (
        "kind",
        "title",
        "owner",
        "gid",
        "roster_n",
        "roster_hash",
        "created",
        "last_activity",
        "last_seq",
        "message_count",
        "messages_link",
    )
    readonly_fields = fields
    inlines = [MembershipInline, RosterRecordInline]
    ordering = ("-last_activity",)

    def get_queryset(self, request):
        counts = (
            Message.objects.filter(conversation=OuterRef("pk"))
            .order_by()
            .values("conversation")
            .annotate(n=Count("pk"))
            .values("n")
        )
        current = Membership.objects.current().select_related("user").order_by("joined", "id")
        return (
            super()
            .get_queryset(request)
            .select_related("owner")
            .annotate(n_messages=Subquery(counts, output_field=IntegerField()))
            .prefetch_related(Prefetch("memberships", queryset=current, to_attr="current_members"))
        )

    @admin.display(description="members")
    def member_list(self, obj):
        return ", ".join(m.user.username for m in obj.current_members)

    @admin.display(description="messages", ordering="n_messages")
    def message_count(self, obj):
        return obj.n_messages or 0

    @admin.display(description="message metadata")
    def messages_link(self, obj):
        url = reverse("admin:messaging_message_changelist") + f"?conversation__id__exact={obj.pk}"
        return format_html('<a href="{}">sender, seq, size and time of each message</a>', url)


@admin.register(Message)
class MessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Message metadata. The envelope (ciphertext, wrapped keys, signature) is never shown."""

    list_display = ("id", "conversation", "seq", "sender", "sender_device", "n", "size", "created")
    list_select_related = ("conversation", "sender", "sender_device")
    search_fields = ("sender__username", "=conversation__id")
    fields = (
        "conversation",
        "seq",
        "sender",
        "sender_device",
        "client_msg_id",
        "n",
        "size",
        "created",
    )
    readonly_fields = fields
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).defer("envelope")


def _live_since():
    return timezone.now() - timedelta(seconds=presence.STALE_SECONDS)


class LiveFilter(admin.SimpleListFilter):
    """Live rows (refreshed within STALE_SECONDS) unless staff ask for stale or all."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("live", "live"), ("stale", "stale (worker gone)"), ("all", "all")]

    def value(self):
        return super().value() or "live"

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "live":
            return queryset.filter(seen__gte=_live_since())
        if self.value() == "stale":
            return queryset.filter(seen__lt=_live_since())
        return queryset


@admin.register(Connection)
class ConnectionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Open WebSockets (presence): live ones by default, with the worker process that
    holds each (host, port, pid). Stale rows are a crashed worker's: `clear_presence`."""

    list_display = ("user", "device", "host", "port", "pid", "opened", "seen", "worker")
    list_select_related = ("user", "device")
    list_filter = (LiveFilter, "host", "port")
    search_fields = ("user__username", "=worker", "=pid")
    fields = ("channel_name", *list_display)
    readonly_fields = fields
    ordering = ("host", "port", "-opened")


class UserActivityAdmin(UserWithDevicesAdmin):
    """The user admin of keys plus what messaging knows: online now (a live socket),
    last seen (her devices' latest), attachment storage (blob bytes)."""

    list_display = (
        *UserWithDevicesAdmin.list_display[:2],
        "online_now",
        "last_seen",
        "storage",
        *UserWithDevicesAdmin.list_display[2:],
    )
    readonly_fields = (*UserWithDevicesAdmin.readonly_fields, "online_now", "last_seen",
                       "storage")  # fmt: skip

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return [*fieldsets, ("Activity", {"fields": ("online_now", "last_seen", "storage")})]

    def get_queryset(self, request):
        live = Connection.objects.filter(user=OuterRef("pk"), seen__gte=_live_since())
        seen = (
            User.objects.filter(pk=OuterRef("pk")).annotate(m=Max("devices__last_seen")).values("m")
        )
        size = (
            Blob.objects.filter(uploader=OuterRef("pk"))
            .order_by()
            .values("uploader")
            .annotate(total=Sum("size"))
            .values("total")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                is_online=Exists(live),
                devices_last_seen=Subquery(seen),
                blob_bytes=Subquery(size, output_field=BigIntegerField()),
            )
        )

    @admin.display(boolean=True, description="online now", ordering="is_online")
    def online_now(self, obj):
        return getattr(obj, "is_online", False)

    @admin.display(description="last seen", ordering="devices_last_seen")
    def last_seen(self, obj):
        seen = getattr(obj, "devices_last_seen", None)
        return date_format(timezone.localtime(seen), "DATETIME_FORMAT") if seen else "never"

    @admin.display(description="storage", ordering="blob_bytes")
    def storage(self, obj):
        return filesizeformat(getattr(obj, "blob_bytes", None) or 0)


admin.site.unregister(User)
admin.site.register(User, UserActivityAdmin)


@admin.register(Blob)
class BlobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Encrypted attachments as metadata: who uploaded how many bytes when, and whether a
    message names it. Never the content, the message or its conversation."""

    list_display = ("id", "uploader", "size", "created", "named")
    list_select_related = ("uploader",)
    search_fields = ("uploader__username", "=id")
    fields = ("id", "uploader", "size", "created", "named")
    readonly_fields = fields
    ordering = ("-created",)
    show_full_result_count = False

    @admin.display(boolean=True, description="named by a message")
    def named(self, obj):
        return obj.message_id is not None


@admin.register(BlobUsage)
class BlobUsageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """How many blobs each user stores and how many bytes they take (her quota use)."""

    list_display = ("username", "blob_count", "blob_bytes")
    search_fields = ("username",)
    fields = ("username", "blob_count", "blob_bytes")
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(n_blobs=Count("blobs"), n_bytes=Sum("blobs__size"))
            .order_by(F("n_bytes").desc(nulls_last=True), "username")
        )

    @admin.display(description="blobs", ordering="n_blobs")
    def blob_count(self, obj):
        return obj.n_blobs

    @admin.display(description="bytes", ordering="n_bytes")
    def blob_bytes(self, obj):
        return obj.n_bytes or 0


# --- message requests and blocks (lane `requests`) -----------------------------------------


@admin.register(Block)
class BlockAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who blocked whom, and when (PROTOCOL §6): made and lifted by the users only."""

    list_display = ("blocker", "blocked", "created")
    search_fields = ("blocker__username", "blocked__username")
    list_select_related = ("blocker", "blocked")
    fields = list_display
    readonly_fields = fields
