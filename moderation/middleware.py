"""A moderator's warning is shown once on the user's next page.

The ``moderation.warning`` event reaches the sockets open at that moment, at most once (the
channel layer is a doorbell); the page is the record. Each HTML page a signed-in user loads
(a GET outside ``/api/``, with a session cookie) reads their unshown warnings (one indexed
read, on a partial index of unshown rows), puts them on ``request.moderation_warnings`` for
``base.html`` and marks them shown.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from . import selectors, services


def warnings_shown(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    def middleware(request: HttpRequest) -> HttpResponse:
        if (
            request.method == "GET"
            and not request.path.startswith(("/api/", "/admin/", "/static/", "/ops/"))
            and settings.SESSION_COOKIE_NAME in request.COOKIES
            and request.user.is_authenticated
        ):
            notices = selectors.notices_unshown(user_id=request.user.pk)
            if notices:
                request.moderation_warnings = [n.message for n in notices]  # type: ignore[attr-defined]
                response = get_response(request)
                if response.status_code == 200:  # shown: a page that failed showed nothing
                    services.notices_shown(notices=notices)
                return response
        return get_response(request)

    return middleware
