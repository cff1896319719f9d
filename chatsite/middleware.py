"""Request-level guards that must run before any view reads a body."""

from django.conf import settings
from django.http import JsonResponse


class BodySizeLimitMiddleware:
    """Refuse API bodies over MAX_FRAME_BYTES with 413 `too_large` before they are read."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.MAX_FRAME_BYTES:
                detail = f"A request body is at most {settings.MAX_FRAME_BYTES} bytes."
                return JsonResponse({"error": {"code": "too_large", "detail": detail}}, status=413)
        return self.get_response(request)
