"""HTML forms of accounts; they call the same actions as the JSON API."""

from django import forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError

from .actions import register_user, validate_new_username
from .errors import ActionError
from .models import User


def _kept_password(label: str | None = None) -> forms.CharField:
    """A password field shown again with what was typed (a refused form keeps it)."""
    widget = forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=True)
    return forms.CharField(label=label, strip=False, widget=widget)


class RegistrationForm(forms.Form):
    """Every problem of a submission is shown at once: the name, the password's
    strength and the two passwords differing are checked independently."""

    username = forms.CharField(
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = _kept_password()
    password_again = _kept_password("Password (again)")

    def clean_username(self):
        username = self.cleaned_data["username"]
        try:
            return validate_new_username(username) or username
        except ActionError as error:
            refusal = error.extra.get("fields", {}).get("username") or error.detail
            raise ValidationError(refusal) from error

    def clean(self):
        data = super().clean()
        password = data.get("password")
        if password:
            candidate = User(username=data.get("username") or self.data.get("username", ""))
            try:
                password_validation.validate_password(password, user=candidate)
            except ValidationError as error:
                self.add_error("password", error)
        if password and password != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data

    def save(self):
        """Create the user, or put the action's refusal on the form's fields; None on refusal."""
        try:
            return register_user(self.cleaned_data["username"], self.cleaned_data["password"])
        except ActionError as error:
            for field, messages in error.extra.get("fields", {}).items():
                for message in messages:
                    self.add_error(field if field in self.fields else None, message)
            if not error.extra.get("fields"):
                self.add_error(None, error.detail)
            return None
