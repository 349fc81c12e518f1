"""Health endpoints for load balancers and orchestrators."""

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from .selectors import readiness_report


@require_GET
def healthz(request):
    """The process answers."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    """Every dependency answers; 503 naming the failed checks otherwise."""
    ok, checks = readiness_report()
    body = {"status": "ok" if ok else "unavailable", "checks": checks}
    if not ok:
        body["failed"] = [name for name, r in checks.items() if not r["ok"]]
    return JsonResponse(body, status=200 if ok else 503)
