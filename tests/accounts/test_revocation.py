"""Revoked credentials close their sockets on every server process (Hardening, item 11).

A user holds sockets on two real server processes, opened with a session cookie, an API
token and tickets issued to each. Log-out, a password change and a revoked token each close,
within 1 s and with 4440, exactly the sockets that answer to what was revoked; the user's
other sockets and other users' sockets stay open.
"""

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from core.errors import CLOSE_CREDENTIALS_REVOKED, CLOSE_UNAUTHENTICATED
from switchboard_client import ConnectError, Connection, url_with_ticket
from tests.conftest import token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PASSWORD = "correct-horse-battery-9"
BOUND_SECONDS = 1.0


async def _open(server, *, token=None, session=None, ticket=None):
    """A socket to ``server`` authenticated one way; returns it after ``hello``."""
    headers, url = {}, server.ws_url
    if token:
        headers["Authorization"] = f"Token {token}"
    if session:
        headers["Cookie"] = f"{settings.SESSION_COOKIE_NAME}={session}"
        headers["Origin"] = server.url  # the cookie counts only behind an allowed Origin
    if ticket:
        url = url_with_ticket(url, ticket)
    # Connection.open raises unless the first frame is hello.
    return await Connection.open(url, headers=headers, open_timeout=20)


async def _close_code(ws, timeout: float) -> int | None:
    """The code ``ws`` was closed with within ``timeout`` seconds, or None if still open."""
    try:
        return await ws.wait_closed(max(0.0, timeout))
    except TimeoutError:
        return None


async def _answers(ws) -> bool:
    """Whether the socket is open and answers a ``ping``."""
    return (await ws.reply("ping", timeout=5))["ok"]


def _session_login(user) -> Client:
    client = Client()
    client.force_login(user)  # (django-axes' backend wants a request for a password log-in)
    return client


def _people(make_user):
    ann, bob = make_user(), make_user()
    browser = _session_login(ann)
    return (
        ann,
        browser,
        browser.cookies[settings.SESSION_COOKIE_NAME].value,
        token_for(ann),
        token_for(bob),
    )


async def _ann_and_bob(make_user):
    """Ann, her logged-in browser and its session key, her API token, and Bob's token."""
    return await database_sync_to_async(_people)(make_user)


def _ticket(client) -> str:
    response = client.post("/api/auth/ws-ticket")
    assert response.status_code == 200, response.content
    return response.json()["ticket"]


def _token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


async def _assert_revoked(revoked: list, kept: list, started: float) -> None:
    codes = await asyncio.gather(
        *(_close_code(ws, started + BOUND_SECONDS - time.monotonic()) for ws in revoked)
    )
    assert codes == [CLOSE_CREDENTIALS_REVOKED] * len(revoked)
    for ws in kept:
        assert ws.close_code is None
        assert await _answers(ws)


async def test_logout_closes_that_sessions_sockets_on_every_process(servers, make_user):
    a, b = servers(2)
    ann, browser, session, ann_token, bob_token = await _ann_and_bob(make_user)
    ticket = await database_sync_to_async(_ticket)(browser)
    revoked = [
        await _open(a, session=session),
        await _open(b, session=session),
        await _open(a, ticket=ticket),  # issued to the session: goes with it
    ]
    kept = [
        await _open(b, token=ann_token),  # ann's app, signed in with its own token
        await _open(a, token=bob_token),
        await _open(b, token=bob_token),
    ]
    response = await database_sync_to_async(browser.delete)("/api/auth/session")
    assert response.status_code == 204
    await _assert_revoked(revoked, kept, time.monotonic())
    # The session is gone: reconnecting with its cookie is refused.
    assert await _refused_code(b, session=session) == CLOSE_UNAUTHENTICATED
    for ws in kept:
        await ws.close()


async def _refused_code(server, *, session: str) -> int | None:
    """The close code of a socket opened with a session cookie that should be refused."""
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}", "Origin": server.url}
    try:
        ws = await Connection.open(server.ws_url, headers=headers, open_timeout=20)
    except ConnectError as exc:  # closed before hello
        return exc.close_code
    return await _close_code(ws, 5)


async def test_password_change_closes_every_socket_of_the_user(servers, make_user):
    a, b = servers(2)
    ann, browser, session, ann_token, bob_token = await _ann_and_bob(make_user)
    ticket = await database_sync_to_async(_ticket)(_token_client(ann_token))
    revoked = [
        await _open(a, session=session),
        await _open(b, token=ann_token),
        await _open(b, ticket=ticket),
    ]
    kept = [await _open(a, token=bob_token), await _open(b, token=bob_token)]

    def change() -> None:
        ann.set_password("another-horse-battery-7")
        ann.save()

    await database_sync_to_async(change)()
    await _assert_revoked(revoked, kept, time.monotonic())
    for ws in kept:
        await ws.close()


async def test_a_save_that_keeps_the_password_closes_nothing(servers, make_user):
    (a,) = servers(1)
    ann = await database_sync_to_async(make_user)()
    ann_token = await database_sync_to_async(token_for)(ann)
    ws = await _open(a, token=ann_token)

    def rename() -> None:
        ann.first_name = "Ann"
        ann.save()

    await database_sync_to_async(rename)()
    assert await _close_code(ws, BOUND_SECONDS) is None
    assert await _answers(ws)
    await ws.close()


async def test_token_revocation_closes_the_tokens_sockets(servers, make_user):
    a, b = servers(2)
    ann, browser, session, ann_token, bob_token = await _ann_and_bob(make_user)
    app = _token_client(ann_token)
    ticket = await database_sync_to_async(_ticket)(app)
    revoked = [
        await _open(a, token=ann_token),
        await _open(b, token=ann_token),
        await _open(a, ticket=ticket),  # issued to the token: goes with it
    ]
    kept = [
        await _open(b, session=session),  # ann's browser session is another credential
        await _open(a, token=bob_token),
        await _open(b, token=bob_token),
    ]
    response = await database_sync_to_async(app.delete)("/api/auth/token")
    assert response.status_code == 204
    await _assert_revoked(revoked, kept, time.monotonic())
    for ws in kept:
        await ws.close()
