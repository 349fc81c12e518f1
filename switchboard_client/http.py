"""The HTTP parts a socket needs (httpx): a token from a username and password, a one-time
ticket, and the socket URL of a server's base URL (docs/protocol.md section 1)."""

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

HTTP_TIMEOUT_SECONDS = 10.0


class HttpError(Exception):
    """An error answer of the REST API: its ``code`` and ``message`` (docs/protocol.md)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def ws_url(base_url: str, path: str = "/ws") -> str:
    """``http://host:port`` -> ``ws://host:port/ws`` (``https`` -> ``wss``)."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        code, message = str(body.get("code")), str(body.get("message"))
    except (ValueError, AttributeError):
        code, message = "http_error", response.text[:200]
    raise HttpError(response.status_code, code, message)


async def token_login(
    base_url: str, username: str, password: str, *, client: httpx.AsyncClient | None = None
) -> str:
    """Trade a username and password for an API token (``POST /api/auth/token``)."""
    async with _client(client) as http:
        response = await http.post(
            f"{base_url}/api/auth/token", json={"username": username, "password": password}
        )
    _raise_for(response)
    token: str = response.json()["token"]
    return token


async def ws_ticket(base_url: str, token: str, *, client: httpx.AsyncClient | None = None) -> str:
    """Get a one-time socket ticket (``POST /api/auth/ws-ticket``, valid 30 s, works once)."""
    async with _client(client) as http:
        response = await http.post(
            f"{base_url}/api/auth/ws-ticket", headers={"Authorization": f"Token {token}"}
        )
    _raise_for(response)
    ticket: str = response.json()["ticket"]
    return ticket


def ticket_source(base_url: str, token: str) -> Callable[[], Awaitable[str]]:
    """A ``ticket`` option for ``Client``: a fresh ticket before every connect."""

    async def fresh() -> str:
        return await ws_ticket(base_url, token)

    return fresh


class _client:
    """The caller's httpx client, or a short-lived one (no proxy for loopback)."""

    def __init__(self, client: httpx.AsyncClient | None) -> None:
        self.given = client
        self.own: httpx.AsyncClient | None = None

    async def __aenter__(self) -> httpx.AsyncClient:
        if self.given is not None:
            return self.given
        self.own = httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS, trust_env=False)
        return self.own

    async def __aexit__(self, *exc: object) -> None:
        if self.own is not None:
            await self.own.aclose()
