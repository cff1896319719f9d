"""The user model: Django's, ours from the first migration so it can grow."""

from django.contrib.auth.models import AbstractUser
from django.db import models

from .names import skeleton


class User(AbstractUser):
    """A person (or bot) who logs in; devices and messages hang off it."""

    #: `names.skeleton(username)`, kept on every save that writes the username: a new
    #: name whose skeleton is taken is refused (look-alikes such as `аlice` for `alice`).
    username_skeleton = models.CharField(max_length=600, db_index=True, editable=False, default="")

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "username" in update_fields:
            self.username_skeleton = skeleton(self.username)
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "username_skeleton"}
        super().save(*args, **kwargs)

    def as_ref(self) -> dict:
        """The `{"id", "username"}` object PROTOCOL uses for members and owners."""
        return {"id": self.pk, "username": self.username}
