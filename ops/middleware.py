"""Count and time every HTTP response for ``GET /metrics``."""

import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

from core.metrics import HTTP_REQUESTS, HTTP_SECONDS

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _observe(request: HttpRequest, response: HttpResponseBase, started: float) -> None:
    method = request.method if request.method in _METHODS else "other"
    HTTP_REQUESTS.labels(method, str(response.status_code)).inc()
    HTTP_SECONDS.labels(method).observe(time.perf_counter() - started)


@sync_and_async_middleware
def request_metrics(get_response: Callable[[HttpRequest], Any]) -> Callable[[HttpRequest], Any]:
    # Async under ASGI: a sync-only middleware would cost every request a thread hop.
    middleware: Callable[[HttpRequest], Any]
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponseBase:
            started = time.perf_counter()
            response = await get_response(request)
            _observe(request, response, started)
            return response

    else:

        def middleware(request: HttpRequest) -> HttpResponseBase:
            started = time.perf_counter()
            response = get_response(request)
            _observe(request, response, started)
            return response

    return middleware
