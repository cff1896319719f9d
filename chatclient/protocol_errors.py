"""PROTOCOL §6 errors, shared by the server and the client: the catalogue of codes and
their HTTP statuses, the error body both sides read and write, and the strict JSON reader
(duplicated keys and NUL characters refused).

The server (``accounts.errors.ActionError``, ``chatsite.api``, ``messaging.frames``) and
the client (``chatclient.session``) import it from here, so a code or a status is written
once. It imports only the standard library: the client distribution stays free of Django.
"""

from __future__ import annotations

import json
from typing import Any

#: Every error code of PROTOCOL §6 and the HTTP status it goes with.
STATUS_BY_CODE: dict[str, int] = {
    "bad_request": 400,
    "invalid_key": 400,
    "bad_proof": 400,
    "bad_cert": 400,
    "bad_signature": 400,
    "invalid_credentials": 400,
    "not_authenticated": 401,
    "forbidden": 403,
    "not_member": 403,
    "registration_closed": 403,
    "not_found": 404,
    "duplicate_key": 409,
    "stale_devices": 409,
    "stale_roster": 409,
    "stale_counter": 409,
    "identity_exists": 409,
    "too_large": 413,
    "over_quota": 413,
    "rate_limited": 429,
    "unknown_type": 400,
}

#: The code of an error status that comes without a §6 body: the server's answer to a
#: refusal of its framework (ninja's HttpError, an unknown method), the client's reading
#: of a body-less answer (a proxy's 413, say).
CODE_BY_STATUS: dict[int, str] = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "bad_request",
    413: "too_large",
    429: "rate_limited",
}

#: What a client calls a 5xx answer without a §6 body (the server never sends it).
SERVER_ERROR = "server_error"


def status_of(code: str) -> int:
    """The HTTP status of a §6 code; 400 for a code the catalogue does not hold."""
    return STATUS_BY_CODE.get(code, 400)


def code_of(status: int) -> str:
    """The §6 code of an error status that came without a body: ``CODE_BY_STATUS``,
    ``server_error`` for 5xx, else ``bad_request``."""
    return CODE_BY_STATUS.get(status, SERVER_ERROR if status >= 500 else "bad_request")


def default_detail(code: str) -> str:
    """The human text of a code when nobody gave one: ``not_found`` -> ``not found``."""
    return code.replace("_", " ")


def error_body(code: str, detail: str = "", **extra: Any) -> dict:
    """The HTTP error body of §4/§6: ``{"error": {"code", "detail", **extra}}``."""
    return {"error": {"code": code, "detail": detail or default_detail(code), **extra}}


def read_error_body(parsed: object) -> tuple[str, str, dict] | None:
    """``(code, detail, extra)`` of a parsed §6 error body, None if it is not one
    (``extra`` holds the other fields: ``missing``, ``head``, ``retry_after`` ...)."""
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not (isinstance(error, dict) and isinstance(error.get("code"), str)):
        return None
    extra = {k: v for k, v in error.items() if k not in ("code", "detail")}
    return error["code"], str(error.get("detail", "")), extra


def _unique_pairs(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key in a JSON object")
    return result


def loads_strict(text: str | bytes) -> Any:
    """`json.loads` that refuses duplicated keys (ValueError), so no reader sees another value."""
    return json.loads(text, object_pairs_hook=_unique_pairs)


def refuse_nul(value: Any) -> Any:
    """The value, unless a string in it (key or value) holds U+0000, which PostgreSQL cannot
    store or compare (ValueError -> 400 bad_request, "Cannot parse request body")."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("a string holds a NUL character")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value
