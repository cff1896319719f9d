"""Request-level guards that must run before any view reads a body."""

from django.conf import settings
from django.http import JsonResponse


def is_blob_upload(method: str, path: str) -> bool:
    """`POST /api/blobs/`, the one request whose body may pass MAX_FRAME_BYTES."""
    return method == "POST" and path == "/api/blobs/"


def body_limit(method: str, path: str) -> int:
    """How many body bytes this request may carry: a blob upload MAX_BLOB_BYTES, any other
    /api/ request MAX_FRAME_BYTES, everything else DATA_UPLOAD_MAX_MEMORY_SIZE."""
    if is_blob_upload(method, path):
        return settings.MAX_BLOB_BYTES
    if path.startswith("/api/"):
        return settings.MAX_FRAME_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def too_large_error(limit: int) -> dict:
    """The JSON body of a 413 for a request body over `limit` bytes."""
    return {"error": {"code": "too_large", "detail": f"A request body is at most {limit} bytes."}}


class SecurityHeadersMiddleware:
    """Headers Django has no setting for, on every response (static files included):
    `Permissions-Policy` (PERMISSIONS_POLICY: the powerful features the chat never uses
    are off, for its pages and anything they embed) and `Cross-Origin-Resource-Policy`
    (CROSS_ORIGIN_RESOURCE_POLICY: other sites cannot load our responses, e.g. as an
    image or script, even when they know a URL)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.headers = {
            "Permissions-Policy": settings.PERMISSIONS_POLICY,
            "Cross-Origin-Resource-Policy": settings.CROSS_ORIGIN_RESOURCE_POLICY,
        }

    def __call__(self, request):
        response = self.get_response(request)
        for name, value in self.headers.items():
            if value and name not in response.headers:
                response.headers[name] = value
        return response


class BodySizeLimitMiddleware:
    """Refuse API bodies over MAX_FRAME_BYTES (a blob upload: MAX_BLOB_BYTES) with 413
    `too_large` by their Content-Length, before they are read. (Bodies without one are
    counted as they arrive by `chatsite.bodylimit`.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            limit = body_limit(request.method, request.path)
            if length > limit:
                return JsonResponse(too_large_error(limit), status=413)
            if "\x00" in request.path or any(
                "\x00" in key or any("\x00" in value for value in values)
                for key, values in request.GET.lists()
            ):  # PostgreSQL cannot compare such a string: it would be a 500
                detail = "A path or query holds a NUL character."
                return JsonResponse(
                    {"error": {"code": "bad_request", "detail": detail}}, status=400
                )
        return self.get_response(request)
