"""Wire formats shared by the apps' JSON: times (strict JSON reading is
``chatclient.protocol_errors.loads_strict``)."""

from datetime import UTC, datetime


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`, millisecond precision; None stays None."""
    if moment is None:
        return None
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )
