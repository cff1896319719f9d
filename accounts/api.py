"""The JSON API of accounts: session and users (PROTOCOL §4)."""

from django.contrib.auth import authenticate, login, logout
from django.middleware.csrf import get_token
from ninja import Router, Status

from .actions import register_user
from .auth import anyone_with_csrf, session_auth
from .discovery import find_users
from .errors import ActionError
from .lockout import DETAIL
from .names import normalize
from .ratelimits import LOGIN_GROUP, REGISTER_GROUP, enforce
from .schemas import Credentials, SessionOut, UserList, UserOut, session_user, with_errors

router = Router(tags=["accounts"])

LOGIN_DETAIL = "Too many login attempts; try again later."
REGISTER_DETAIL = "Too many registrations; try again later."


@router.get("/session/", response=with_errors({200: SessionOut}), auth=None)
def get_session(request):
    """The logged-in user or null; sets the `csrftoken` cookie."""
    get_token(request)
    user = request.user
    return {"user": session_user(user) if user.is_authenticated else None}


@router.post("/session/", response=with_errors({200: UserOut}), auth=anyone_with_csrf)
def create_session(request, body: Credentials):
    """Log in (the username in NFKC form, as registration stores it). Failed logins are
    throttled per (username, client address), attempts per address by LOGIN_RATE."""
    enforce(request, LOGIN_GROUP, key="ip", setting="LOGIN_RATE", detail=LOGIN_DETAIL)
    user = authenticate(request, username=normalize(body.username), password=body.password)
    if user is None:
        if getattr(request, "axes_locked_out", False):
            raise ActionError("rate_limited", DETAIL)
        raise ActionError("invalid_credentials", "Wrong username or password.")
    login(request, user)
    return {"user": session_user(user)}


@router.delete("/session/", response=with_errors({204: None}), auth=anyone_with_csrf)
def delete_session(request):
    """Log out (also fine when not logged in)."""
    logout(request)
    return Status(204, None)


@router.post("/users/", response=with_errors({201: UserOut}), auth=anyone_with_csrf)
def create_user(request, body: Credentials):
    """Register (when registration is open) and log in; REGISTER_RATE per client address."""
    enforce(request, REGISTER_GROUP, key="ip", setting="REGISTER_RATE", detail=REGISTER_DETAIL)
    user = register_user(body.username, body.password)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return Status(201, {"user": session_user(user)})


@router.get("/users/", response=with_errors({200: UserList}), auth=session_auth)
def search_users(request, q: str = ""):
    """Active users `q` finds: a prefix of 3 or more characters, or the exact name only
    (setting `USER_DISCOVERY`), at most `USER_SEARCH_LIMIT` (accounts.discovery)."""
    return {"users": [user.as_ref() for user in find_users(q)]}
