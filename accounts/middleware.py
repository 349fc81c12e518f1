"""Sessions of a suspended or banned account end at their next request.

Log-in is refused while a sanction is in force (``forms.LoginForm``, ``api``), but a browser
signed in before it still holds its session: this middleware logs it out on its next
request, with the reason (a page goes to the log-in page, which shows it; a REST call gets
the ``suspended`` error). Only requests that carry a session cookie are checked, with one
indexed read (``restrictions.user_restriction``).
"""

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

from .restrictions import user_restriction


def restricted_sessions(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    def middleware(request: HttpRequest) -> HttpResponse:
        if settings.SESSION_COOKIE_NAME in request.COOKIES and request.user.is_authenticated:
            restriction = user_restriction(user_id=request.user.pk)
            if restriction is not None:
                logout(request)
                error = restriction.error()
                if request.path.startswith("/api/"):
                    body = {"code": error.code, "message": error.message, **error.extra}
                    return JsonResponse(body, status=error.http_status)
                messages.error(request, restriction.message())
                return redirect("login")
        return get_response(request)

    return middleware
