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
            if "\x00" in request.path or any(
                "\x00" in key or any("\x00" in value for value in values)
                for key, values in request.GET.lists()
            ):  # PostgreSQL cannot compare such a string: it would be a 500
                detail = "A path or query holds a NUL character."
                return JsonResponse(
                    {"error": {"code": "bad_request", "detail": detail}}, status=400
                )
        return self.get_response(request)
