"""Staff admin of the key registry: devices (search by fingerprint, certificate status,
revoke through `keys.actions`), identities (search by fingerprint, current and replaced)
and link requests, both read-only; and the user admin of `accounts`, extended with each
user's identity fingerprints, devices and "revoke all devices".

Only public facts are shown: fingerprints (kids), names, times, statuses. Never a
signature blob, an `id_wrap` (it holds the identity's private key, encrypted) or content.
"""

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery

from accounts.admin import ReadOnlyAdminMixin, UserAdmin
from accounts.models import User

from .actions import revoke_all_devices, revoke_device
from .models import Device, Identity, LinkRequest


def short(kid: str | None) -> str:
    return kid[:16] + "…" if kid else "-"


def cert_status(device: Device) -> str:
    """ "certified by <fingerprint>", "certified by replaced <fingerprint>" or "no cert (v1)"."""
    if not device.cert or device.identity is None:
        return "no cert (v1)"
    replaced = "" if device.identity.replaced is None else "replaced identity "
    return f"certified by {replaced}{short(device.identity.id_kid)}"


class CertFilter(admin.SimpleListFilter):
    title = "certificate"
    parameter_name = "cert"

    def lookups(self, request, model_admin):
        return [
            ("current", "by the current identity"),
            ("replaced", "by a replaced identity"),
            ("none", "none (v1)"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "current":
            return queryset.exclude(cert="").filter(identity__replaced__isnull=True)
        if self.value() == "replaced":
            return queryset.exclude(cert="").filter(identity__replaced__isnull=False)
        if self.value() == "none":
            return queryset.filter(cert="")
        return queryset


class ActiveFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("revoked", "revoked")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked__isnull=False)
        return queryset


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    """Read-only device records; the one change staff can make is revocation."""

    list_display = (
        "id",
        "user",
        "name",
        "enc_fingerprint",
        "sig_fingerprint",
        "certificate",
        "created",
        "revoked",
    )
    list_select_related = ("user", "identity")
    list_filter = (ActiveFilter, CertFilter, "created")
    # A fingerprint is the kid (hex SHA-256 of the SPKI); a prefix of it finds the device.
    search_fields = ("^enc_kid", "^sig_kid", "^identity__id_kid", "user__username", "name")
    fields = ("user", "name", "enc_kid", "sig_kid", "certificate", "created", "revoked")
    readonly_fields = fields
    ordering = ("-created",)
    actions = ["revoke_selected"]

    @admin.display(description="encryption kid", ordering="enc_kid")
    def enc_fingerprint(self, obj):
        return obj.enc_kid[:16] + "…"

    @admin.display(description="signing kid", ordering="sig_kid")
    def sig_fingerprint(self, obj):
        return obj.sig_kid[:16] + "…"

    @admin.display(description="certificate")
    def certificate(self, obj):
        return cert_status(obj)

    def has_add_permission(self, request):
        return False  # devices are registered by their owner with a proof of possession

    def has_change_permission(self, request, obj=None):
        # The changelist (and its actions) need "change"; single records are read-only.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # revoked devices are kept so that old signatures stay verifiable

    @admin.action(permissions=["change"], description="Revoke selected devices (close sockets)")
    def revoke_selected(self, request, queryset):
        done = 0
        with transaction.atomic():
            for device in queryset.select_related("user").order_by("pk"):
                if device.revoked is not None:
                    continue
                revoke_device(device)
                self.log_change(request, device, "Revoked by admin action.")
                done += 1
        self.message_user(request, f"Revoked {done} device(s).", messages.SUCCESS)


class CurrentFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("current", "current"), ("replaced", "replaced")]

    def queryset(self, request, queryset):
        if self.value() == "current":
            return queryset.filter(replaced__isnull=True)
        if self.value() == "replaced":
            return queryset.filter(replaced__isnull=False)
        return queryset


@admin.register(Identity)
class IdentityAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Identity keys, read-only: whose, fingerprint, current or replaced (by a reset),
    whether a v1 device signed the upgrade (§7.5), how many devices it certified."""

    list_display = ("user", "fingerprint", "status", "upgraded", "certified_devices", "created")
    list_select_related = ("user",)
    list_filter = (CurrentFilter, "created")
    search_fields = ("^id_kid", "user__username")
    fields = ("user", "id_kid", "status", "upgraded", "certified_devices", "created", "replaced")
    readonly_fields = fields
    ordering = ("-created",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(device_count=Count("devices"))

    @admin.display(description="fingerprint (id kid)", ordering="id_kid")
    def fingerprint(self, obj):
        return obj.id_kid

    @admin.display(description="status")
    def status(self, obj):
        return "current" if obj.replaced is None else f"replaced {obj.replaced:%Y-%m-%d %H:%M}"

    @admin.display(description="upgraded from v1 by device")
    def upgraded(self, obj):
        return short(obj.upgrade["sig_kid"]) if obj.upgrade else "-"

    @admin.display(description="devices certified", ordering="device_count")
    def certified_devices(self, obj):
        return obj.device_count


@admin.register(LinkRequest)
class LinkRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Link requests (§7.2), read-only, without the `id_wrap` an approval stores."""

    list_display = (
        "id",
        "user",
        "name",
        "enc_fingerprint",
        "sig_fingerprint",
        "status",
        "created",
        "expires",
        "device",
    )
    list_select_related = ("user", "device")
    list_filter = ("status", "created")
    search_fields = ("^enc_kid", "^sig_kid", "user__username", "name")
    fields = ("user", "name", "enc_kid", "sig_kid", "status", "created", "expires", "device")
    readonly_fields = fields
    ordering = ("-created",)

    @admin.display(description="encryption kid", ordering="enc_kid")
    def enc_fingerprint(self, obj):
        return short(obj.enc_kid)

    @admin.display(description="signing kid", ordering="sig_kid")
    def sig_fingerprint(self, obj):
        return short(obj.sig_kid)


class IdentityInline(ReadOnlyAdminMixin, admin.TabularInline):
    """A user's identity keys, current first, then those resets replaced."""

    model = Identity
    fields = ("id_kid", "created", "replaced")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-created",)
    verbose_name = "identity key"
    verbose_name_plural = "identity keys (fingerprints; replaced ones by a reset)"


class DeviceInline(ReadOnlyAdminMixin, admin.TabularInline):
    """A user's devices, read-only: name, fingerprints (kids), certificate, created,
    revoked."""

    model = Device
    fields = ("name", "enc_kid", "sig_kid", "certificate", "created", "revoked")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-created",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("identity")

    @admin.display(description="certificate")
    def certificate(self, obj):
        return cert_status(obj)


class UserWithDevicesAdmin(UserAdmin):
    """The accounts user admin plus what keys owns: devices inline, an active-device
    count in the list, and revoking all devices of the selected users."""

    list_display = (
        *UserAdmin.list_display[:3],
        "identity_fingerprint",
        "active_devices",
        *UserAdmin.list_display[3:],
    )
    inlines = [IdentityInline, DeviceInline]
    actions = [*UserAdmin.actions, "revoke_all_devices_of_selected"]
    search_fields = (*UserAdmin.search_fields, "=identities__id_kid")

    def get_queryset(self, request):
        active = Count("devices", filter=Q(devices__revoked__isnull=True))
        current = Identity.objects.current().filter(user=OuterRef("pk")).values("id_kid")[:1]
        return (
            super()
            .get_queryset(request)
            .annotate(active_device_count=active, current_id_kid=Subquery(current))
        )

    @admin.display(description="identity")
    def identity_fingerprint(self, obj):
        return short(obj.current_id_kid) if obj.current_id_kid else "none (not upgraded)"

    @admin.display(description="active devices", ordering="active_device_count")
    def active_devices(self, obj):
        return obj.active_device_count

    @admin.action(permissions=["change"], description="Revoke all devices of selected users")
    def revoke_all_devices_of_selected(self, request, queryset):
        total = 0
        with transaction.atomic():
            for user in queryset.order_by("pk"):
                count = revoke_all_devices(user)
                if count:
                    self.log_change(
                        request, user, f"Revoked all devices ({count}) by admin action."
                    )
                total += count
        self.message_user(request, f"Revoked {total} device(s).", messages.SUCCESS)


admin.site.unregister(User)
admin.site.register(User, UserWithDevicesAdmin)
