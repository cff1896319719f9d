"""Staff admin of the key registry: devices (search by fingerprint, certificate status,
revoke through `keys.actions`), identities (search by fingerprint, current and replaced)
and link requests, both read-only; and the user admin of `accounts`, extended with each
user's identity fingerprints, devices and "revoke all devices".

Only public facts are shown: fingerprints (kids), names, times, statuses. Never a
signature blob, an `id_wrap` (it holds the identity's private key, encrypted) or content.
"""

import re

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.admin import ReadOnlyAdminMixin, UserAdmin
from accounts.models import User

from .actions import revoke_all_devices, revoke_device
from .models import Device, Identity, LinkRequest


def short(kid: str | None) -> str:
    """The start of a kid as the clients show fingerprints: "843d 0887 1a2b 3c4d …"."""
    if not kid:
        return "-"
    return " ".join(kid[i : i + 4] for i in range(0, 16, 4)) + " …"


def grouped(kid: str) -> str:
    """A whole kid in groups of four, as the clients show it (wraps at the spaces)."""
    return " ".join(kid[i : i + 4] for i in range(0, len(kid), 4))


_FINGERPRINT_NOISE = re.compile(r"[\s:.\-…]+")
_HEX = re.compile(r"[0-9a-f]{4,64}")


def fingerprint_prefix(query: str) -> str | None:
    """The kid prefix a search means, from a fingerprint as shown or typed ("843d 0887 …",
    "84:3D:08:87", "843D0887"): spaces, colons, dots, dashes and the ellipsis dropped,
    lower case; None unless that leaves 4 to 64 hex digits."""
    prefix = _FINGERPRINT_NOISE.sub("", query).lower()
    return prefix if _HEX.fullmatch(prefix) else None


def search_with_fingerprints(model_admin, request, queryset, search_term, kid_fields):
    """The admin's own search, plus the rows whose kid fields start with the fingerprint
    the term spells (if it spells one)."""
    found, duplicates = admin.ModelAdmin.get_search_results(
        model_admin, request, queryset, search_term
    )
    prefix = fingerprint_prefix(search_term)
    if prefix is None:
        return found, duplicates
    by_kid = Q()
    for field in kid_fields:
        by_kid |= Q(**{f"{field}__startswith": prefix})
    return found | queryset.filter(by_kid), True


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
        "last_seen",
        "revoked",
    )
    list_select_related = ("user", "identity")
    list_filter = (ActiveFilter, CertFilter, "created")
    # A fingerprint is the kid (hex SHA-256 of the SPKI); a prefix of it finds the device,
    # typed as the clients show it ("843d 0887 …") or in any case, with colons.
    search_fields = ("user__username", "name")
    search_help_text = "Owner, device name, or fingerprint as shown (e.g. 843d 0887 …)."
    KID_FIELDS = ("enc_kid", "sig_kid", "identity__id_kid")
    fields = ("user", "name", "enc_kid", "sig_kid", "certificate", "created", "last_seen",
              "revoked")  # fmt: skip
    readonly_fields = fields
    ordering = ("-created",)
    actions = ["revoke_selected"]

    def get_search_results(self, request, queryset, search_term):
        return search_with_fingerprints(self, request, queryset, search_term, self.KID_FIELDS)

    @admin.display(description="encryption kid", ordering="enc_kid")
    def enc_fingerprint(self, obj):
        return short(obj.enc_kid)

    @admin.display(description="signing kid", ordering="sig_kid")
    def sig_fingerprint(self, obj):
        return short(obj.sig_kid)

    def get_urls(self):
        revoke = self.admin_site.admin_view(self.revoke_one)
        return [path("<int:pk>/revoke/", revoke, name="keys_device_revoke"), *super().get_urls()]

    def revoke_one(self, request, pk):
        """One device's revocation from its owner's page: GET asks, POST revokes
        (keys.actions.revoke_device: sockets close, co-members are told) and goes back."""
        if not self.has_change_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        device = get_object_or_404(Device.objects.select_related("user"), pk=pk)
        back = reverse("admin:accounts_user_change", args=[device.user_id])
        if request.method == "POST":
            if device.revoked is None:
                with transaction.atomic():
                    revoke_device(device)
                    self.log_change(request, device, "Revoked by admin (user page).")
                self.message_user(request, f"Revoked {device}.", messages.SUCCESS)
            return HttpResponseRedirect(back)
        context = {
            **self.admin_site.each_context(request),
            "title": "Revoke this device?",
            "device": device,
            "back": back,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/keys/device/revoke_confirm.html", context)

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
    search_fields = ("user__username",)
    search_help_text = "Owner, or fingerprint as shown (e.g. 843d 0887 …)."
    fields = ("user", "id_kid", "status", "upgraded", "certified_devices", "created", "replaced")

    def get_search_results(self, request, queryset, search_term):
        return search_with_fingerprints(self, request, queryset, search_term, ("id_kid",))

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
    fields = ("name", "fingerprints", "certificate", "created", "last_seen", "revoked",
              "revoke")  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-created",)
    classes = ("chat-devices",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("identity")

    @admin.display(description="certificate")
    def certificate(self, obj):
        return cert_status(obj)

    @admin.display(description="fingerprints (encryption / signing)")
    def fingerprints(self, obj):
        return format_html(
            '<span class="chat-kid">{}</span><br><span class="chat-kid">{}</span>',
            grouped(obj.enc_kid),
            grouped(obj.sig_kid),
        )

    @admin.display(description="")
    def revoke(self, obj):
        if obj.revoked is not None:
            return "revoked"
        url = reverse("admin:keys_device_revoke", args=[obj.pk])
        return format_html('<a class="button" href="{}">Revoke…</a>', url)


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

    class Media:
        css = {"all": ("chat/admin.css",)}

    actions = [*UserAdmin.actions, "revoke_all_devices_of_selected"]
    search_fields = UserAdmin.search_fields
    search_help_text = "Username, or a fingerprint of her identity or a device (843d 0887 …)."
    KID_FIELDS = ("identities__id_kid", "devices__enc_kid", "devices__sig_kid")

    def get_search_results(self, request, queryset, search_term):
        return search_with_fingerprints(self, request, queryset, search_term, self.KID_FIELDS)

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
