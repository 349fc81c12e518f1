"""ASGI entry point: HTTP goes to Django, WebSocket to the one multiplexed consumer."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "switchboard.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path  # noqa: E402

from realtime.auth import WebSocketAuthMiddleware  # noqa: E402
from realtime.consumer import GatewayConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Static files are served by the app itself (no separate server in `make run`);
        # production puts a CDN or nginx in front (docs/deployment.md).
        "http": ASGIStaticFilesHandler(django_asgi_app),
        "websocket": WebSocketAuthMiddleware(URLRouter([path("ws", GatewayConsumer.as_asgi())])),
    }
)
