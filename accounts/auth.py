"""How API requests are authenticated: Django's session cookie, CSRF on unsafe methods."""

from django.contrib.auth.models import AnonymousUser
from ninja.security import APIKeyCookie
from ninja.security.session import SessionAuth


class SessionUserAuth(SessionAuth):
    """A logged-in, active user; unsafe methods must carry a valid X-CSRFToken."""

    def authenticate(self, request, key):
        user = request.user
        return user if user.is_authenticated and user.is_active else None


class AnyoneWithCsrf(APIKeyCookie):
    """Anyone, logged in or not; unsafe methods must still carry a valid X-CSRFToken."""

    param_name = "csrftoken"

    def authenticate(self, request, key):
        return request.user if request.user.is_authenticated else AnonymousMarker()


class AnonymousMarker(AnonymousUser):
    """A truthy anonymous user, so django-ninja lets the request through."""

    def __bool__(self) -> bool:
        return True


session_auth = SessionUserAuth()
anyone_with_csrf = AnyoneWithCsrf()
