"""django-axes' lock-out answer (``AXES_LOCKOUT_CALLABLE``): 429 with ``Retry-After``.

Under ``/api/`` it is the REST error body every other error has (``core.api``); on the
browser's log-in pages (``/accounts/login/``, the admin's) a short text. Axes counts failed
log-ins in PostgreSQL (its database handler), so a lock-out holds across web processes and
through a cache outage.
"""

from typing import Any

from axes.helpers import get_cool_off
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.errors import RATE_LIMITED

MESSAGE = "Too many failed log-ins for this account from your address; try again later."


def lockout_response(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Answer a locked-out log-in attempt (axes passes the original response, credentials)."""
    cool_off = get_cool_off(request)
    retry_after = max(1, int(cool_off.total_seconds())) if cool_off else None
    response: HttpResponse
    if request.path.startswith("/api/"):
        body: dict[str, Any] = {"code": RATE_LIMITED, "message": MESSAGE}
        if retry_after is not None:
            body["retry_after"] = retry_after
        response = JsonResponse(body, status=429)
    else:
        response = HttpResponse(
            MESSAGE + "\n", status=429, content_type="text/plain; charset=utf-8"
        )
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response
