"""The user model: Django's, ours from the first migration so it can grow."""

from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person (or bot) who logs in; devices and messages hang off it."""

    def as_ref(self) -> dict:
        """The `{"id", "username"}` object PROTOCOL uses for members and owners."""
        return {"id": self.pk, "username": self.username}
