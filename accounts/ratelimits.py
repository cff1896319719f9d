"""Request rate limits on Django's cache (django-ratelimit), one call per limited endpoint.

Every limit is a setting holding a django-ratelimit rate ("<count>/<s|m|h|d>", e.g.
"20/h"; empty turns the limit off), counted per key ("ip": the client address,
REMOTE_ADDR, IPv6 per /64; "user": the logged-in user) in fixed windows on the
`default` cache: Redis when REDIS_URL is set, so every worker shares the counts; this
process's memory otherwise. docs/protocol.md "Rate limits" lists them.
"""

import logging

from django.conf import settings
from django_ratelimit.core import get_usage

from .errors import ActionError

logger = logging.getLogger(__name__)

# The API and the HTML forms count in one group each: one count per address for both ways in.
LOGIN_GROUP = "accounts.login"
REGISTER_GROUP = "accounts.register"


def rate_limited(request, group: str, *, key: str, setting: str) -> int | None:
    """Count this request in `group` against the rate in `settings.<setting>`; the seconds
    until the window ends (at least 1) when it is over the limit, else None.

    The cache failing (Redis down) lets the request through: a limit is not worth an
    outage of sends and logins; the failure is logged."""
    rate = getattr(settings, setting) or None
    try:
        usage = get_usage(request, group=group, key=key, rate=rate, increment=True)
    except Exception:
        logger.warning("rate limit %s not checked: the cache failed", group, exc_info=True)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    return max(1, usage["time_left"])


def enforce(request, group: str, *, key: str, setting: str, detail: str) -> None:
    """Raise 429 `rate_limited` (with `retry_after` for the Retry-After header) when this
    request is over the limit of `settings.<setting>`; it is counted either way.

    Call it before the endpoint changes anything, so a refused request changes nothing."""
    retry_after = rate_limited(request, group, key=key, setting=setting)
    if retry_after is not None:
        raise ActionError("rate_limited", detail, retry_after=retry_after)
