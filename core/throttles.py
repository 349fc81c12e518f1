"""Request throttles on the cache Redis: DRF's sliding window, one rate per scope.

``ScopedThrottle`` is DRF's ``SimpleRateThrottle`` (a list of request times per scope and
client in the Django cache), with three changes, each for a reason:

- the rate is read from ``settings.THROTTLE_RATES`` at each request, not once at import
  (DRF binds ``DEFAULT_THROTTLE_RATES`` to the class), so settings overrides apply;
- the client is the user when signed in, else ``REMOTE_ADDR``. DRF's ``get_ident`` believes
  ``X-Forwarded-For`` unless ``NUM_PROXIES`` is set, so a client could name a new address
  per request and never be counted; here the proxy header is uvicorn's business
  (``--forwarded-allow-ips``, docs/deployment.md), which sets ``REMOTE_ADDR`` from it only for
  a trusted proxy;
- a view may limit the methods it counts (``throttle_methods``): a log-in form's GET is not a
  log-in attempt.

Views name their scope: ``throttle_scope = "login"`` (DRF views, with this class in
``DEFAULT_THROTTLE_CLASSES``) or ``@throttled("login")`` (plain Django views: a 429 page).
The cache is disposable: while it is away no history is read or stored, so throttles fail
open (docs/security.md says why).
"""

import math
from collections.abc import Callable, Collection
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from rest_framework.throttling import SimpleRateThrottle

ALL_METHODS: Collection[str] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class ScopedThrottle(SimpleRateThrottle):
    """The rate of the view's ``throttle_scope`` per user (signed in) or per address."""

    cache_format = "throttle:%(scope)s:%(ident)s"

    def __init__(self) -> None:  # the rate is read per request (allow_request)
        pass

    def allow_request(self, request: Any, view: Any) -> bool:
        scope = getattr(view, "throttle_scope", None)
        if not scope or request.method not in getattr(view, "throttle_methods", ALL_METHODS):
            return True
        self.scope = scope
        self.rate = settings.THROTTLE_RATES[scope] or None
        if self.rate is None:  # an empty rate turns the scope off (the test settings do)
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_ident(self, request: Any) -> str:
        return str(request.META.get("REMOTE_ADDR", ""))

    def get_cache_key(self, request: Any, view: Any) -> str:
        user = getattr(request, "user", None)
        if getattr(view, "throttle_per_address", False) or not (user and user.is_authenticated):
            ident = f"ip:{self.get_ident(request)}"
        else:
            ident = f"user:{user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class _PlainView:
    """What ``ScopedThrottle`` reads from a view, for a plain Django view."""

    def __init__(self, scope: str, methods: Collection[str]) -> None:
        self.throttle_scope = scope
        self.throttle_methods = methods
        self.throttle_per_address = True


def throttled(
    scope: str, *, methods: Collection[str] = ("POST",)
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """Throttle a plain Django view (a form page) per address: past the rate, a 429 page."""
    view_info = _PlainView(scope, methods)

    def decorate(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            throttle = ScopedThrottle()
            if throttle.allow_request(request, view_info):
                return view(request, *args, **kwargs)
            wait = max(1, math.ceil(throttle.wait() or 0))
            response = HttpResponse(
                f"Too many attempts; try again in {wait} seconds.\n",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(wait)
            return response

        return wrapper

    return decorate
