"""Wire formats shared by the apps' JSON: times and user references."""

import json
from datetime import UTC, datetime


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`, millisecond precision; None stays None."""
    if moment is None:
        return None
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


class DuplicateKeyError(ValueError):
    """A JSON object named the same key twice."""


def _unique_pairs(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise DuplicateKeyError("duplicate key in a JSON object")
    return result


def loads_strict(text: str | bytes):
    """`json.loads` that refuses duplicated keys (ValueError), so no reader sees another value."""
    return json.loads(text, object_pairs_hook=_unique_pairs)
