"""Staff admin of devices: search by fingerprint, revoke through `keys.actions`; and the
user admin of `accounts`, extended with each user's devices and "revoke all devices"."""

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, Q

from accounts.admin import ReadOnlyAdminMixin, UserAdmin
from accounts.models import User

from .actions import revoke_all_devices, revoke_device
from .models import Device


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
        "created",
        "revoked",
    )
    list_select_related = ("user",)
    list_filter = (ActiveFilter, "created")
    # A fingerprint is the kid (hex SHA-256 of the SPKI); a prefix of it finds the device.
    search_fields = ("^enc_kid", "^sig_kid", "user__username", "name")
    fields = ("user", "name", "enc_kid", "sig_kid", "created", "revoked")
    readonly_fields = fields
    ordering = ("-created",)
    actions = ["revoke_selected"]

    @admin.display(description="encryption kid", ordering="enc_kid")
    def enc_fingerprint(self, obj):
        return obj.enc_kid[:16] + "…"

    @admin.display(description="signing kid", ordering="sig_kid")
    def sig_fingerprint(self, obj):
        return obj.sig_kid[:16] + "…"

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


class DeviceInline(ReadOnlyAdminMixin, admin.TabularInline):
    """A user's devices, read-only: name, fingerprints (kids), created, revoked."""

    model = Device
    fields = ("name", "enc_kid", "sig_kid", "created", "revoked")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-created",)


class UserWithDevicesAdmin(UserAdmin):
    """The accounts user admin plus what keys owns: devices inline, an active-device
    count in the list, and revoking all devices of the selected users."""

    list_display = (*UserAdmin.list_display[:3], "active_devices", *UserAdmin.list_display[3:])
    inlines = [DeviceInline]
    actions = [*UserAdmin.actions, "revoke_all_devices_of_selected"]

    def get_queryset(self, request):
        active = Count("devices", filter=Q(devices__revoked__isnull=True))
        return super().get_queryset(request).annotate(active_device_count=active)

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
