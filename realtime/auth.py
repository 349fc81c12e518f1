"""WebSocket authentication and origin checking, done once at connect.

Order of precedence: a one-time ``ticket`` query parameter (from ``POST
/api/auth/ws-ticket``), then an ``Authorization: Token <key>`` header (clients that can set
headers), then the Django session cookie. The session cookie counts only when the browser
sent an allowed ``Origin``: that is what stops another site's page from opening a socket
with a visitor's cookies (cross-site WebSocket hijacking). Failures are recorded in the scope
and turned into documented close codes by the consumer (docs/protocol.md).

Tickets and tokens belong to the accounts app: it registers how each finds its user
(``core.router.authenticator``), so the gateway knows no app. The scope also keeps the
``credential_id`` of what authenticated the socket (``scope["auth_credential"]``), so the
accounts app can close it when that credential is revoked.
"""

from importlib import import_module
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.auth import get_user
from channels.middleware import BaseMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie
from django.http.request import validate_host

from core.errors import CLOSE_ORIGIN_FORBIDDEN, CLOSE_UNAUTHENTICATED
from core.router import AUTHENTICATORS, credential_id


def origin_allowed(origin: str) -> bool:
    """Return whether a browser page at ``origin`` may open a socket here."""
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    try:
        parts = urlsplit(origin)
        port = parts.port  # raises on a malformed port ("h:99999", "h:abc")
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname if port is None else f"{parts.hostname}:{port}"
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return validate_host(host, allowed) or validate_host(parts.hostname, allowed)


def _session(scope: dict[str, Any]) -> Any:
    """The Django session named by the request's cookie (loaded only when read).

    Read-only here: a socket never changes its session. So no ``SessionMiddleware`` around
    the consumer, whose wrapper checked the session on every frame the server sends (8 % of
    a server's CPU in a 1,000-member fan-out, docs/benchmarks.md).
    """
    cookie = "; ".join(
        v.decode("latin1") for k, v in scope["headers"] if k.decode("latin1").lower() == "cookie"
    )
    key = parse_cookie(cookie).get(settings.SESSION_COOKIE_NAME)
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)


async def _credential_user(method: str, credential: str) -> tuple[Any, str | None]:
    resolve = AUTHENTICATORS.get(method)
    found = await resolve(credential) if resolve is not None else None
    return found if found is not None else (AnonymousUser(), None)


# Channels ships no types: its base classes are ``Any`` to mypy.
class _TokenAuthMiddleware(BaseMiddleware):  # type: ignore[misc]
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        headers = {k.decode("latin1").lower(): v.decode("latin1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        origin_ok = origin is None or origin_allowed(origin)
        user, method, credential = AnonymousUser(), None, None
        ticket = parse_qs(scope.get("query_string", b"").decode("latin1")).get("ticket", [""])[0]
        authorization = headers.get("authorization", "")
        if ticket:
            user, credential = await _credential_user("ticket", ticket)
            method = "ticket"
        elif authorization.lower().startswith("token "):
            user, credential = await _credential_user("token", authorization[6:].strip())
            method = "token"
        elif origin is not None and origin_ok:
            scope["session"] = _session(scope)
            user = await get_user(scope)
            method = "session"
            if scope["session"].session_key:
                credential = credential_id("session", scope["session"].session_key)
        if not origin_ok:
            scope["auth_error"] = CLOSE_ORIGIN_FORBIDDEN
        elif not user.is_authenticated:
            scope["auth_error"] = CLOSE_UNAUTHENTICATED
        scope["user"] = user
        scope["auth_method"] = method if user.is_authenticated else None
        # What a revocation names to close this socket (``core.router.credential_id``).
        scope["auth_credential"] = credential if user.is_authenticated else None
        return await super().__call__(scope, receive, send)


def WebSocketAuthMiddleware(inner: Any) -> _TokenAuthMiddleware:
    """Wrap ``inner`` with Switchboard's ticket / token / session auth."""
    return _TokenAuthMiddleware(inner)
