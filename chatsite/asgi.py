"""ASGI entry point: HTTP through Django, WebSockets through Channels (session auth, and
the full-origin check of `chatsite.origins`)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chatsite.bodylimit import BodyLimit  # noqa: E402
from chatsite.origins import SameOriginValidator  # noqa: E402
from chatsite.routing import websocket_urlpatterns  # noqa: E402
from chatsite.wsauth import SessionAuthMiddlewareStack  # noqa: E402
from messaging.realtime import warn_if_single_process  # noqa: E402

warn_if_single_process()

application = ProtocolTypeRouter(
    {
        "http": BodyLimit(django_asgi_app),
        "websocket": SameOriginValidator(
            SessionAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
