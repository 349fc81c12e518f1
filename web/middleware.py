"""The Content-Security-Policy header of the browser pages (Hardening, item 12).

Django 5.2 has no CSP support of its own (6.0 adds it) and django-csp is not a dependency,
so this small middleware sends ``settings.CONTENT_SECURITY_POLICY`` on every HTML response
except the third-party pages of ``CSP_EXEMPT_PATHS`` (Swagger UI and ReDoc load their
scripts from a CDN and start them with inline scripts; the admin is Django's own).
The pages follow it: scripts are ES modules from ``static/``, styles are ``app.css``, data
reaches scripts through ``json_script`` (a JSON data block, never executed), and no
template has an inline script, style attribute or event handler.
"""

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

HEADER = "Content-Security-Policy"


def csp_header(request: HttpRequest) -> str:
    """Return the policy for this request: the settings' table, plus this host's WebSocket.

    ``connect-src 'self'`` covers ``ws(s)://`` of the same host in current browsers (CSP
    level 3); older Safari needs the WebSocket origin spelled out.
    """
    policy = {name: list(sources) for name, sources in settings.CONTENT_SECURITY_POLICY.items()}
    scheme = "wss" if request.is_secure() else "ws"
    policy.setdefault("connect-src", ["'self'"]).append(f"{scheme}://{request.get_host()}")
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in policy.items())


def _apply(request: HttpRequest, response: HttpResponseBase) -> None:
    if HEADER in response or not response.get("Content-Type", "").startswith("text/html"):
        return
    if request.path.startswith(tuple(settings.CSP_EXEMPT_PATHS)):
        return
    response[HEADER] = csp_header(request)


@sync_and_async_middleware
def content_security_policy(
    get_response: Callable[[HttpRequest], Any],
) -> Callable[[HttpRequest], Any]:
    # Async under ASGI, as ops.middleware: a sync-only middleware costs a thread hop.
    middleware: Callable[[HttpRequest], Any]
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponseBase:
            response = await get_response(request)
            _apply(request, response)
            return response

    else:

        def middleware(request: HttpRequest) -> HttpResponseBase:
            response = get_response(request)
            _apply(request, response)
            return response

    return middleware
