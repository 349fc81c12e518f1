"""Health endpoints for load balancers and orchestrators; stats and metrics for operators."""

import hmac
import ipaddress
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.views.decorators.http import require_GET
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import INVALID
from core.metrics import metrics_render

from .selectors import DEGRADABLE, WEB_CHECKS, ops_stats, readiness_report


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers."""
    return JsonResponse({"status": "ok"})


def _loopback(request: HttpRequest) -> bool:
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


# ``/readyz?scope=...``: which checks run. ``all`` (the default) is the whole system: what
# `make run` waits for and a monitor watches; ``web`` is what this process needs to serve,
# the probe of a load balancer or an orchestrator's readiness check.
READY_SCOPES: dict[str, frozenset[str] | None] = {"all": None, "web": WEB_CHECKS}


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Every dependency answers (200 "ok"); only the cache is away (200 "degraded", naming
    it); an essential one is away (503 "unavailable", naming the failed checks).
    ``?scope=web`` runs only the checks of what this process needs to serve (no worker,
    no beat).

    The checks' errors name hosts and ports of the database and Redis: only staff and
    clients on this host (probes, a shell on the box) see them; anyone else gets the status.
    """
    scope = request.GET.get("scope", "all")
    if scope not in READY_SCOPES:
        return JsonResponse(
            {
                "code": INVALID,
                "message": f"scope must be one of: {', '.join(READY_SCOPES)}.",
                "fields": {"scope": ["unknown scope"]},
            },
            status=400,
        )
    ok, checks = readiness_report(only=READY_SCOPES[scope])
    failed = [name for name, r in checks.items() if not r["ok"]]
    degraded = [name for name in failed if name in DEGRADABLE]
    status = "unavailable" if not ok else "degraded" if degraded else "ok"
    body: dict[str, Any] = {"status": status}
    if _loopback(request) or getattr(request.user, "is_staff", False):
        body["checks"] = checks
        if not ok:
            body["failed"] = failed
        if degraded:
            body["degraded"] = degraded
    return JsonResponse(body, status=200 if ok else 503)


class OpsStatsView(APIView):
    """Cache and bus Redis numbers, open WebSockets per process, beat, periodic tasks."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="Operational numbers (staff only)",
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        return Response(ops_stats())


# Headers a proxy adds when it relays a request: a relayed request is never "from this host".
_FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def _is_loopback(value: str) -> bool:
    try:
        return ipaddress.ip_address(value).is_loopback
    except ValueError:  # a host name, a unix socket path, "unknown"
        return False


def _metrics_allowed(request: HttpRequest) -> bool:
    """With ``METRICS_TOKEN``: the bearer token. Without: a scraper on this host only.

    "On this host" means the connection was accepted on a loopback address (``SERVER_NAME``
    is the socket's local address under ASGI: ``scope["server"]``), comes from a loopback
    address, and no proxy relayed it. A server listening beyond loopback (compose's
    ``--host 0.0.0.0``) therefore needs the token for every scrape that reaches it from
    elsewhere; private addresses are not trusted (behind Docker's NAT every client has one),
    and neither is a forwarding header (a client can send ``X-Forwarded-For: 127.0.0.1``).
    """
    token = settings.OPS["METRICS_TOKEN"]
    if token:
        sent = request.headers.get("Authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    relayed = any(name in request.META for name in _FORWARDING_HEADERS)
    return (
        not relayed
        and _is_loopback(request.META.get("SERVER_NAME", ""))
        and _is_loopback(request.META.get("REMOTE_ADDR", ""))
    )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition of every process on this host (docs/subsystems/operations.md)."""
    if not _metrics_allowed(request):
        return HttpResponseForbidden(
            "metrics: send the bearer token (METRICS_TOKEN), or scrape on loopback"
        )
    body, content_type = metrics_render()
    return HttpResponse(body, content_type=content_type)
