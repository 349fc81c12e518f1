"""Pages of notifications: the service worker (served from the site root, so its scope is the
whole site) and the one-click unsubscribe of the email digest."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from core.errors import Invalid

from . import services


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """``/sw.js``: shows a push as a notification and opens its conversation on click."""
    response = HttpResponse(
        render_to_string("notifications/sw.js"), content_type="text/javascript; charset=utf-8"
    )
    # A service worker's scope is at most its script's directory: /sw.js covers the site.
    response["Service-Worker-Allowed"] = "/"
    # Browsers check for an updated worker at most daily anyway; no stale copy in between.
    response["Cache-Control"] = "no-cache"
    return response


# No CSRF token: a mail provider's RFC 8058 one-click POST has no cookie; the signed token
# in the URL is the authority. GET never changes anything (link scanners follow links), it
# shows the one button that POSTs.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """Turn email notifications off for the user the signed token names."""
    try:
        user_id = services.unsubscribe_user_id(token=token)
        if request.method == "POST":
            services.unsubscribe_email(token=token)
    except Invalid as exc:
        return render(request, "notifications/unsubscribe.html", {"error": exc.message}, status=400)
    return render(
        request,
        "notifications/unsubscribe.html",
        {"done": request.method == "POST", "user_id": user_id},
    )
