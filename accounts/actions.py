"""Every write to accounts: registration, deactivation, reactivation.

HTTP views, HTML forms and the admin call these; they validate, write, and send the
signals higher layers listen to.
"""

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction

from . import names
from .errors import ActionError
from .models import User
from .signals import user_deactivated

username_validator = UnicodeUsernameValidator()


def _refuse(reason: str):
    return ActionError("bad_request", reason, fields={"username": [reason]})


def validate_new_username(username: str) -> str:
    """The username in NFKC form, unless it is malformed, mixes scripts (e.g. Latin and
    Cyrillic letters), or looks like a taken one: the same in any letter case or the same
    confusable skeleton (`names.skeleton`: `аlice` with a Cyrillic а for `alice`)."""
    username = names.normalize(username)
    try:
        username_validator(username)
    except ValidationError as exc:
        raise ActionError(
            "bad_request", "Invalid username.", fields={"username": exc.messages}
        ) from exc
    if not 1 <= len(username) <= 150:
        raise ActionError(
            "bad_request", "Invalid username.", fields={"username": ["1 to 150 characters."]}
        )
    if names.is_mixed_script(username):
        raise _refuse("Use letters of one script only (e.g. not Latin and Cyrillic mixed).")
    if User.objects.filter(username__iexact=username).exists():
        raise _refuse("That username is taken.")
    if User.objects.filter(username_skeleton=names.skeleton(username)).exists():
        raise _refuse("That username looks too much like a taken one.")
    return username


def register_user(username: str, password: str, *, by_staff: bool = False) -> User:
    """Create an active user after Django's password validators; staff may register when closed."""
    if not settings.REGISTRATION_OPEN and not by_staff:
        raise ActionError("registration_closed", "Registration is closed; ask an administrator.")
    username = validate_new_username(username)
    candidate = User(username=username)
    try:
        password_validation.validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ActionError(
            "bad_request", "Password refused.", fields={"password": exc.messages}
        ) from exc
    candidate.set_password(password)
    candidate.save()
    return candidate


def deactivate_user(user: User) -> None:
    """Deactivate an account: it cannot log in, and its live sockets close (signal)."""
    if not user.is_active:
        return
    user.is_active = False
    user.save(update_fields=["is_active"])
    transaction.on_commit(lambda: user_deactivated.send(sender=User, user=user))


def reactivate_user(user: User) -> None:
    """Let a deactivated account log in again."""
    if user.is_active:
        return
    user.is_active = True
    user.save(update_fields=["is_active"])
