"""WebSocket authentication and origin checking, done once at connect.

Order of precedence: a one-time ``ticket`` query parameter (from ``POST
/api/auth/ws-ticket``), then an ``Authorization: Token <key>`` header (clients that can set
headers), then the Django session cookie. The session cookie counts only when the browser
sent an allowed ``Origin``: that is what stops another site's page from opening a socket
with a visitor's cookies (cross-site WebSocket hijacking). Failures are recorded in the scope
and turned into documented close codes by the consumer (docs/protocol.md); a look-up that
fails because PostgreSQL or Redis is away is 1013 (try again), never an HTTP 500.

Tickets and tokens belong to the accounts app: it registers how each finds its user
(``core.router.authenticator``), so the gateway knows no app. The scope also keeps the
``credential_id`` of what authenticated the socket (``scope["auth_credential"]``), so the
accounts app can close it when that credential is revoked.
"""

import logging
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.auth import get_user
from channels.middleware import BaseMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host

from core.errors import CLOSE_ORIGIN_FORBIDDEN, CLOSE_TRY_AGAIN, CLOSE_UNAUTHENTICATED
from core.router import AUTHENTICATORS, Authenticated, credential_id

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Rate-limited in settings.LOGGING: during an outage every connect fails the same way.
outage_logger = logging.getLogger("realtime.outage")


def _origin_tuple(origin: str) -> tuple[str, str, int] | None:
    """Return ``(scheme, host, port)`` of an ``http(s)`` origin, or None if it is not one."""
    try:
        parts = urlsplit(origin)
        port = parts.port  # raises on a malformed port ("h:99999", "h:abc")
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        return None  # an Origin is scheme://host[:port], nothing more
    return parts.scheme, parts.hostname, port if port is not None else _DEFAULT_PORTS[parts.scheme]


def _own_origin(scope: dict[str, Any], headers: dict[str, str]) -> tuple[str, str, int] | None:
    """The origin this socket was opened at: the page of that origin may use it.

    As Django's CSRF check does for a request: the ``Host`` header (which must name an
    allowed host) with the connection's scheme (``wss`` is https; behind a TLS proxy,
    ``SECURE_PROXY_SSL_HEADER`` or uvicorn's ``--proxy-headers`` says so).
    """
    host = headers.get("host", "")
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed):
        return None
    secure = scope.get("scheme") in ("wss", "https")
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy is not None:
        header = proxy[0].removeprefix("HTTP_").replace("_", "-").lower()
        secure = headers.get(header, "").split(",")[0].strip() == proxy[1]
    return _origin_tuple(f"{'https' if secure else 'http'}://{host}")


def origin_allowed(origin: str, scope: dict[str, Any], headers: dict[str, str]) -> bool:
    """Return whether a browser page at ``origin`` may open this socket.

    Scheme, host and port must all agree: with this socket's own origin (see
    ``_own_origin``), or with an entry of ``CSRF_TRUSTED_ORIGINS`` (``https://*.example.com``
    allows the subdomains of example.com on that scheme and port, as for Django's CSRF).
    """
    theirs = _origin_tuple(origin)
    if theirs is None:
        return False
    if theirs == _own_origin(scope, headers):
        return True
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        wildcard = "://*." in trusted
        ours = _origin_tuple(trusted.replace("://*.", "://", 1))
        if ours is None or (theirs[0], theirs[2]) != (ours[0], ours[2]):
            continue
        if theirs[1] == ours[1] or (wildcard and theirs[1].endswith("." + ours[1])):
            return True
    return False


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


async def _credential_user(
    method: str, credential: str, scope: dict[str, Any]
) -> tuple[Any, str | None]:
    resolve = AUTHENTICATORS.get(method)
    found: Authenticated | None = await resolve(credential) if resolve is not None else None
    if found is None:
        return AnonymousUser(), None
    if found.give_back is not None:  # a single-use credential: undone if the open fails
        scope["auth_give_back"] = found.give_back
    return found.user, found.credential


# Channels ships no types: its base classes are ``Any`` to mypy.
class _TokenAuthMiddleware(BaseMiddleware):  # type: ignore[misc]
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        headers = {k.decode("latin1").lower(): v.decode("latin1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        origin_ok = origin is None or origin_allowed(origin, scope, headers)
        user, method, credential = AnonymousUser(), None, None
        ticket = parse_qs(scope.get("query_string", b"").decode("latin1")).get("ticket", [""])[0]
        authorization = headers.get("authorization", "")
        unavailable = False
        try:
            if ticket:
                user, credential = await _credential_user("ticket", ticket, scope)
                method = "ticket"
            elif authorization.lower().startswith("token "):
                token = authorization[6:].strip()
                user, credential = await _credential_user("token", token, scope)
                method = "token"
            elif origin is not None and origin_ok:
                scope["session"] = _session(scope)
                user = await get_user(scope)
                method = "session"
                if scope["session"].session_key:
                    credential = credential_id("session", scope["session"].session_key)
        except Exception as exc:  # PostgreSQL or Redis away: not the client's fault
            outage_logger.warning("websocket auth=%s unavailable: %r", method or "?", exc)
            user, unavailable = AnonymousUser(), True
        if unavailable:
            # Accepted, then closed 1013 by the consumer: "try again later", not a 500.
            scope["auth_error"] = CLOSE_TRY_AGAIN
        elif not origin_ok:
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
