"""URL wiring: pages, the JSON API (with its OpenAPI docs at /api/docs), admin."""

from django.contrib import admin
from django.urls import include, path

from chatsite.api import api
from messaging import health

urlpatterns = [
    path("healthz", health.healthz),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("", include("accounts.urls")),
    path("", include("messaging.page_urls")),
]
