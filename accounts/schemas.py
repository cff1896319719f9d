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
    """PROTOCOL §6 error; may carry more fields (`fields`, `missing`, `extra`, ...)."""

    model_config = ConfigDict(extra="allow")

    code: str
    detail: str


class ErrorOut(Schema):
    error: ErrorDetail


ERROR_STATUSES = frozenset({400, 401, 403, 404, 409, 413, 429})


def with_errors(success: dict) -> dict:
    """A ninja `response=` mapping: the success bodies plus PROTOCOL's error body."""
    return {**success, ERROR_STATUSES: ErrorOut}


def session_user(user) -> dict:
    """The `user` object of the session endpoints."""
    return {"id": user.pk, "username": user.username, "is_staff": user.is_staff}
