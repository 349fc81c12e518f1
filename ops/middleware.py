"""Count and time every HTTP response for ``GET /metrics``."""

import time

from asgiref.sync import iscoroutinefunction
from django.utils.decorators import sync_and_async_middleware

from core.metrics import HTTP_REQUESTS, HTTP_SECONDS

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _observe(request, response, started: float) -> None:
    method = request.method if request.method in _METHODS else "other"
    HTTP_REQUESTS.labels(method, str(response.status_code)).inc()
    HTTP_SECONDS.labels(method).observe(time.perf_counter() - started)


@sync_and_async_middleware
def request_metrics(get_response):
    # Async under ASGI: a sync-only middleware would cost every request a thread hop.
    if iscoroutinefunction(get_response):

        async def middleware(request):
            started = time.perf_counter()
            response = await get_response(request)
            _observe(request, response, started)
            return response

    else:

        def middleware(request):
            started = time.perf_counter()
            response = get_response(request)
            _observe(request, response, started)
            return response

    return middleware
