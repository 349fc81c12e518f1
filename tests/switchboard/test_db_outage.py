"""PostgreSQL away: REST answers JSON 503, a WebSocket is accepted and closed 1013 (try
again), a one-time ticket survives the failed connect; everything works again after.

The server process' ``DATABASE_URL`` is a private PostgreSQL (``tests/postgres_server.py``)
that the test stops and starts; the shared one is never touched.
"""

import asyncio
import json
import time

import httpx
import pytest
import websockets
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.services import ws_ticket_issue
from core import router
from core.errors import CLOSE_TRY_AGAIN
from core.redis import bus, key
from tests.postgres_server import postgres_server

PASSWORD = "correct-horse-battery-9"
RECOVERY_TIMEOUT_SECONDS = 30


@pytest.fixture
def private_db():
    with postgres_server() as server:
        yield server


async def _ws_close_code(url: str, headers: dict | None = None) -> int:
    """Connect; return the close code the server sent after accepting (no hello)."""
    async with websockets.connect(url, additional_headers=headers, open_timeout=15) as ws:
        try:
            frame = await asyncio.wait_for(ws.recv(), 15)
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is not None
            return exc.rcvd.code
    raise AssertionError(f"the socket opened: {frame}")


async def _ws_hello(url: str, headers: dict | None = None) -> dict:
    async with websockets.connect(url, additional_headers=headers, open_timeout=15) as ws:
        return json.loads(await asyncio.wait_for(ws.recv(), 15))


def _ticket_exists(ticket: str) -> bool:
    return bool(bus().exists(key("wsticket", ticket)))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_database_outage_is_json_503_and_close_1013_and_spares_the_ticket(servers, private_db):
    (server,) = servers(1, DATABASE_URL=private_db.url(), DB_POOL_TIMEOUT="2")
    with httpx.Client(base_url=server.url, timeout=20) as http:
        res = http.post("/api/auth/signup", json={"username": "ann", "password": PASSWORD})
        assert res.status_code == 201, res.text
        token = {"Authorization": f"Token {res.json()['token']}"}
        tickets = [http.post("/api/auth/ws-ticket", headers=token).json()["ticket"]]
        tickets.append(http.post("/api/auth/ws-ticket", headers=token).json()["ticket"])
        assert asyncio.run(_ws_hello(server.ws_url, token))["type"] == "hello"

        private_db.stop()
        log_from = server.log.stat().st_size
        for method, path, body in [
            ("GET", "/api/profile", None),
            ("GET", "/api/conversations", None),
            ("POST", "/api/auth/token", {"username": "ann", "password": PASSWORD}),
        ]:
            res = http.request(method, path, json=body, headers=token)
            assert res.status_code == 503, (path, res.status_code, res.text[:300])
            assert res.headers["content-type"] == "application/json", res.text[:300]
            assert res.json()["code"] == "unavailable"
            assert int(res.headers["Retry-After"]) >= 1
        assert http.get("/healthz").status_code == 200  # the process itself is fine

        assert asyncio.run(_ws_close_code(server.ws_url, token)) == CLOSE_TRY_AGAIN
        ticket_url = f"{server.ws_url}?ticket={tickets[0]}"
        assert asyncio.run(_ws_close_code(ticket_url)) == CLOSE_TRY_AGAIN
        assert _ticket_exists(tickets[0]), "a failed connect must not use up the ticket"
        assert asyncio.run(_ws_close_code(ticket_url)) == CLOSE_TRY_AGAIN  # and again
        outage_log = server.log.read_text(errors="replace")[log_from:]
        assert "Traceback" not in outage_log

        private_db.start()
        deadline = time.monotonic() + RECOVERY_TIMEOUT_SECONDS
        while http.get("/api/profile", headers=token).status_code != 200:
            assert time.monotonic() < deadline, "the server did not recover"
            time.sleep(0.3)
        hello = asyncio.run(_ws_hello(ticket_url))
        assert hello["type"] == "hello" and hello["data"]["auth"] == "ticket"
        assert not _ticket_exists(tickets[0])
        assert asyncio.run(_ws_close_code(ticket_url)) == 4401  # still single-use
        second = asyncio.run(_ws_hello(f"{server.ws_url}?ticket={tickets[1]}"))
        assert second["type"] == "hello"


@pytest.mark.django_db(transaction=True)
async def test_a_connect_hook_failure_closes_1013_undoes_and_gives_the_ticket_back(make_user):
    """An app's connect hook fails (its store away): no 500, no half-open socket."""
    from switchboard.asgi import application

    user = await database_sync_to_async(make_user)()
    ticket = await database_sync_to_async(ws_ticket_issue)(user=user)

    async def store_away(conn: router.Connection) -> None:
        raise ConnectionError("the store is away")

    router.hook("connect", order=99)(store_away)
    try:
        comm = WebsocketCommunicator(application, f"/ws?ticket={ticket}")
        connected, _ = await comm.connect(timeout=5)
        assert connected  # accepted, then closed with a code
        closed = await comm.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": CLOSE_TRY_AGAIN}
        await comm.disconnect()  # the client's side of the close
    finally:
        router.HOOKS["connect"] = [h for h in router.HOOKS["connect"] if h[1] is not store_away]
    assert await database_sync_to_async(_ticket_exists)(ticket)
    comm = WebsocketCommunicator(application, f"/ws?ticket={ticket}")
    connected, _ = await comm.connect(timeout=5)
    assert connected
    hello = json.loads((await comm.receive_output(timeout=5))["text"])
    assert hello["type"] == "hello" and hello["data"]["user_id"] == user.pk
    await comm.disconnect()
