"""Request-level guards that must run before any view reads a body."""

from django.conf import settings
from django.http import JsonResponse


def is_blob_upload(method: str, path: str) -> bool:
    """`POST /api/blobs/`, the one request whose body may pass MAX_FRAME_BYTES."""
    return method == "POST" and path == "/api/blobs/"


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
            limit = (
                settings.MAX_BLOB_BYTES
                if is_blob_upload(request.method, request.path)
                else settings.MAX_FRAME_BYTES
            )
            if length > limit:
                detail = f"A request body is at most {limit} bytes."
                return JsonResponse({"error": {"code": "too_large", "detail": detail}}, status=413)
            if "\x00" in request.path or any(
                "\x00" in key or any("\x00" in value for value in values)
                for key, values in request.GET.lists()
            ):  # PostgreSQL cannot compare such a string: it would be a 500
                detail = "A path or query holds a NUL character."
                return JsonResponse(
                    {"error": {"code": "bad_request", "detail": detail}}, status=400
                )
        return self.get_response(request)
