"""The exception every server layer raises with a PROTOCOL §6 code (the catalogue of codes,
statuses and error bodies is ``chatclient.protocol_errors``, shared with the client)."""

from chatclient.protocol_errors import default_detail, status_of


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
        self.detail = detail or default_detail(code)
        self.retry_after = retry_after
        self.extra = extra

    @property
    def status(self) -> int:
        return status_of(self.code)

    def as_dict(self) -> dict:
        return {"code": self.code, "detail": self.detail, **self.extra}
