"""Declared shapes of the accounts API (PROTOCOL §4)."""

from ninja import Schema
from pydantic import ConfigDict, Field


class StrictIn(Schema):
    """Request bodies: strict types; unknown fields are ignored."""

    model_config = ConfigDict(strict=True)


class Credentials(StrictIn):
    username: str = Field(max_length=150)
    password: str = Field(max_length=4096)


class UserRef(Schema):
    id: int
    username: str


class SessionUser(UserRef):
    is_staff: bool


class SessionOut(Schema):
    user: SessionUser | None


class UserOut(Schema):
    user: SessionUser


class UserList(Schema):
    users: list[UserRef]


class ErrorDetail(Schema):
    code: str
    detail: str


class ErrorOut(Schema):
    error: ErrorDetail


def session_user(user) -> dict:
    """The `user` object of the session endpoints."""
    return {"id": user.pk, "username": user.username, "is_staff": user.is_staff}
