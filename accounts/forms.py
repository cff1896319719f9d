"""HTML forms of accounts; they call the same actions as the JSON API."""

from django import forms

from .actions import register_user
from .errors import ActionError


class RegistrationForm(forms.Form):
    username = forms.CharField(
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password_again = forms.CharField(
        label="Password (again)", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password_again"):
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
