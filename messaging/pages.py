"""Views that serve the browser app's pages; all data then flows over the JSON API."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


@login_required
@ensure_csrf_cookie
def chat_app(request):
    return render(request, "chat/app.html")
