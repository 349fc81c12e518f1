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

# Garbage collection (docs/benchmarks.md, "typical"): a full collection walks every object of
# the process, Django's modules and every socket's state alike, while the loop waits (100 to
# 175 ms per gen-2 pass with 1,500 sockets, the worst latencies of the typical load). What
# exists now lives as long as the process: moved out of the collector's reach.
import gc  # noqa: E402

from django.conf import settings  # noqa: E402

import switchboard.urls  # noqa: E402, F401  (imported now, not by the first request)

gc.freeze()
# Full collections of what came after (every socket's state) ten times rarer than Python's
# default: settings.GC_THRESHOLDS.
gc.set_threshold(*settings.GC_THRESHOLDS)
