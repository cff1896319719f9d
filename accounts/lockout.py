"""The response to a login attempt while django-axes has the username or address locked out."""

from django.http import JsonResponse
from django.shortcuts import render

DETAIL = "Too many failed logins; try again later."


def lockout_response(request, original_response=None, credentials=None):
    """429: PROTOCOL's `rate_limited` error for the API, a plain page for the HTML form."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": "rate_limited", "detail": DETAIL}}, status=429)
    return render(request, "accounts/locked_out.html", status=429)
