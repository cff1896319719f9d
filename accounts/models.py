"""The user model: Django's, ours from the first migration so it can grow."""

from django.contrib.auth.models import AbstractUser
from django.db import models, transaction

from .names import skeleton
from .signals import password_changed


class User(AbstractUser):
    """A person (or bot) who logs in; devices and messages hang off it."""

    #: `names.skeleton(username)`, kept on every save that writes the username: a new
    #: name whose skeleton is taken is refused (look-alikes such as `аlice` for `alice`).
    username_skeleton = models.CharField(max_length=600, db_index=True, editable=False, default="")

    _password_set = False

    def set_password(self, raw_password):
        super().set_password(raw_password)
        self._password_set = True

    def save(self, *args, **kwargs):
        """Save; keeps `username_skeleton`, and after a password change of an existing
        user (any `set_password`, hash upgrades included: they change the session auth
        hash too) sends `password_changed` once the transaction commits."""
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "username" in update_fields:
            self.username_skeleton = skeleton(self.username)
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "username_skeleton"}
        adding = self._state.adding
        super().save(*args, **kwargs)
        if self._password_set and (update_fields is None or "password" in update_fields):
            self._password_set = False
            if not adding:
                transaction.on_commit(lambda: password_changed.send(sender=User, user=self))

    def as_ref(self) -> dict:
        """The `{"id", "username"}` object PROTOCOL uses for members and owners."""
        return {"id": self.pk, "username": self.username}
