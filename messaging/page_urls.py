"""The chat's HTML pages (the browser app is in static/chat/)."""

from django.urls import path

from . import pages

urlpatterns = [
    path("", pages.chat_app, name="chat"),
    path("security/", pages.chat_app, name="security"),
]
