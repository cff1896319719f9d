"""Staff admin of users: list, search, lifecycle actions.

Every change of an account's life (create, deactivate, reactivate) goes through
`accounts.actions`, never a direct field write, so the signals fire and live sockets
close; each one is written to Django's admin log. `keys.admin` extends this admin with
the user's devices (accounts, the lower layer, does not know about them).
"""

import logging

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserCreationForm
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from .actions import deactivate_user, reactivate_user, register_user, validate_new_username
from .errors import ActionError
from .models import User

staff_log = logging.getLogger("chatsite.staff")
ACTION_NAMES = {ADDITION: "add", CHANGE: "change", DELETION: "delete"}


@receiver(post_save, sender=LogEntry, dispatch_uid="chat_staff_json_log")
def log_staff_action(sender, instance: LogEntry, created: bool, **kwargs):
    """Every admin log entry also goes to the log as one JSON line: who did what to whom
    (staff, action, target type, id and name, the change message). Never field values."""
    if not created:
        return
    content_type = instance.content_type
    staff_log.info(
        "staff action",
        extra={
            "staff": instance.user.get_username(),
            "staff_id": instance.user_id,
            "action": ACTION_NAMES.get(instance.action_flag, str(instance.action_flag)),
            "target_type": f"{content_type.app_label}.{content_type.model}"
            if content_type
            else None,
            "target_id": instance.object_id,
            "target": instance.object_repr,
            "change": instance.get_change_message(),
        },
    )


@admin.register(LogEntry)
class AuditLogAdmin(admin.ModelAdmin):
    """Every staff action in the admin (Django's admin log), read-only: who, when, what,
    to whom. Not only one's own "Recent actions": the whole record, searchable."""

    list_display = ("action_time", "user", "action", "target_type", "target", "message")
    list_filter = (
        "action_flag",
        ("content_type", admin.RelatedOnlyFieldListFilter),
        ("user", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("user", "content_type")
    search_fields = ("object_repr", "change_message", "user__username", "=object_id")
    date_hierarchy = "action_time"
    ordering = ("-action_time",)
    fields = ("action_time", "user", "action", "target_type", "object_id", "object_repr",
              "message")  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="action", ordering="action_flag")
    def action(self, obj):
        return ACTION_NAMES.get(obj.action_flag, obj.action_flag)

    @admin.display(description="type", ordering="content_type__model")
    def target_type(self, obj):
        return obj.content_type.name if obj.content_type else "-"

    @admin.display(description="target", ordering="object_repr")
    def target(self, obj):
        return obj.object_repr

    @admin.display(description="what")
    def message(self, obj):
        return obj.get_change_message()


class ReadOnlyAdminMixin:
    """No add, change or delete: these records are written by the chat only."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StaffUserCreationForm(UserCreationForm):
    """Username and password twice; creation itself is `register_user(by_staff=True)`,
    which works when REGISTRATION_OPEN is off."""

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username",)

    def clean_username(self):
        username = self.cleaned_data.get("username", "")
        try:
            return validate_new_username(username)
        except ActionError as error:
            raise forms.ValidationError(
                error.extra.get("fields", {}).get("username") or [error.detail]
            ) from error


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    add_form = StaffUserCreationForm
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "password1", "password2")}),
    )
    list_display = ("username", "is_active", "is_staff", "date_joined", "last_login")
    list_filter = ("is_active", "is_staff", "is_superuser")
    search_fields = ("username", "email", "first_name", "last_name")
    ordering = ("username",)
    actions = ["deactivate_selected", "reactivate_selected"]
    readonly_fields = ("last_login", "date_joined")

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        # Deleting would drop devices without the revocation signal (sockets stay open)
        # and is refused anyway for anyone who sent a message: deactivate instead.
        return False

    # --- create and change through the actions ----------------------------------------

    def save_form(self, request, form, change):
        if change:
            return super().save_form(request, form, change)
        return register_user(
            form.cleaned_data["username"], form.cleaned_data["password1"], by_staff=True
        )

    def save_related(self, request, form, formsets, change):
        if change:  # a new user has no inlines or m2m yet (register_user saved it)
            super().save_related(request, form, formsets, change)

    def save_model(self, request, obj, form, change):
        if not change:
            return  # saved by register_user in save_form
        if "is_active" not in form.changed_data:
            super().save_model(request, obj, form, change)
            return
        wanted = obj.is_active
        if not wanted and obj.pk == request.user.pk:
            obj.is_active = True
            super().save_model(request, obj, form, change)
            self.message_user(request, "You cannot deactivate yourself.", messages.ERROR)
            return
        # Store the other fields with the old flag, then flip it through the action so
        # the signal fires (sockets close) exactly as for any other deactivation.
        obj.is_active = not wanted
        super().save_model(request, obj, form, change)
        if wanted:
            reactivate_user(obj)
        else:
            deactivate_user(obj)

    # --- changelist actions ----------------------------------------------------------

    @staticmethod
    def _locked(queryset):
        """The selected users, row-locked (without the list's GROUP BY, which PostgreSQL
        refuses with FOR UPDATE)."""
        pks = list(queryset.values_list("pk", flat=True))
        return User.objects.select_for_update().filter(pk__in=pks).order_by("pk")

    @admin.action(permissions=["change"], description="Deactivate selected users (close sockets)")
    def deactivate_selected(self, request, queryset):
        done = 0
        with transaction.atomic():
            for user in self._locked(queryset):
                if user.pk == request.user.pk:
                    self.message_user(request, "You cannot deactivate yourself.", messages.ERROR)
                    continue
                if not user.is_active:
                    continue
                deactivate_user(user)
                self.log_change(request, user, "Deactivated by admin action.")
                done += 1
        self.message_user(request, f"Deactivated {done} user(s).", messages.SUCCESS)

    @admin.action(permissions=["change"], description="Reactivate selected users")
    def reactivate_selected(self, request, queryset):
        done = 0
        with transaction.atomic():
            for user in self._locked(queryset):
                if user.is_active:
                    continue
                reactivate_user(user)
                self.log_change(request, user, "Reactivated by admin action.")
                done += 1
        self.message_user(request, f"Reactivated {done} user(s).", messages.SUCCESS)
