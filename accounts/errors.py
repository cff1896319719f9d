"""The error codes of PROTOCOL §6 and the exception every layer raises with them."""

STATUS_BY_CODE = {
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


class ActionError(Exception):
    """A refused request: `code` from PROTOCOL, a human `detail`, and extra fields.

    Raised by actions and validators; the HTTP API renders it as
    ``{"error": {"code", "detail", **extra}}`` with `status`, the WebSocket consumer as an
    ``error`` frame. Nothing was changed when it is raised. `retry_after` (seconds, for
    `rate_limited`) becomes the HTTP `Retry-After` header, not a field of the body.
    """

    def __init__(self, code: str, detail: str = "", *, retry_after: int | None = None, **extra):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail or code.replace("_", " ")
        self.retry_after = retry_after
        self.extra = extra

    @property
    def status(self) -> int:
        return STATUS_BY_CODE.get(self.code, 400)

    def as_dict(self) -> dict:
        return {"code": self.code, "detail": self.detail, **self.extra}
