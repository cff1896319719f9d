"""URL wiring: pages, the JSON API (its OpenAPI schema at /api/openapi.json, the docs page
at /api/docs for staff), admin."""

from django.contrib import admin
from django.urls import include, path, re_path

from chatsite.api import api, api_docs, api_not_found
from messaging import health

urlpatterns = [
    path("healthz", health.healthz),
    path("admin/", admin.site.urls),
    path("api/docs", api_docs),
    path("api/", api.urls),
    re_path(r"^api/", api_not_found),  # PROTOCOL error body, not Django's HTML 404
    path("", include("accounts.urls")),
    path("", include("messaging.page_urls")),
]
