"""The WebSocket Origin check (PROTOCOL §6): scheme, host and port, as Django's CSRF check.

A handshake is let through when its ``Origin`` is the site's own origin, that is the
scheme the client connected with (``https`` when the socket is ``wss`` or, behind a TLS
proxy, when ``SECURE_PROXY_SSL_HEADER`` says so) followed by the ``Host`` header the
client sent (port included, and the host in ``ALLOWED_HOSTS``), or when it is listed in
``CSRF_TRUSTED_ORIGINS`` (exactly, or ``scheme://*.domain`` for subdomains). That is the
rule Django applies to the ``Origin`` of unsafe HTTP requests, so a page that may call
the API may open the socket and no other. Everything else (another scheme, host or port,
``null``, none) is refused at the handshake with HTTP 403.
"""

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _is_secure(scope) -> bool:
    """The client connected over TLS: to us directly, or to the proxy we trust."""
    if scope.get("scheme") in ("wss", "https"):
        return True
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        name, value = proxy
        meta = name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")
        sent = _header(scope, meta)
        return sent is not None and sent.split(",", 1)[0].strip() == value
    return False


def own_origin(scope) -> str | None:
    """`scheme://host[:port]` of the site as this client reached it, or None when its
    Host header is missing or not in ALLOWED_HOSTS."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    return f"{'https' if _is_secure(scope) else 'http'}://{host.lower()}"


def _trusted(origin: str) -> bool:
    """Listed in CSRF_TRUSTED_ORIGINS, as Django's CSRF check reads that list."""
    parts = urlsplit(origin)
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        if trusted == origin:
            return True
        want = urlsplit(trusted)
        if (
            "*" in trusted
            and want.scheme == parts.scheme
            and parts.netloc
            and is_same_domain(parts.netloc, want.netloc.replace("*", "", 1))
        ):
            return True
    return False


def origin_allowed(scope) -> bool:
    """Whether the handshake's Origin is the site's own origin or a trusted one."""
    origin = _header(scope, b"origin")
    if not origin or origin == "null":
        return False
    origin = origin.lower()
    return origin == own_origin(scope) or _trusted(origin)


class SameOriginValidator:
    """ASGI middleware for WebSockets: refuses (HTTP 403) a handshake from another origin."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
