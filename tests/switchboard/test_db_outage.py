"""PostgreSQL away: REST answers JSON 503, a WebSocket is accepted and closed 1013 (try
again), a one-time ticket survives the failed connect; everything works again after.

The server process' ``DATABASE_URL`` is a private PostgreSQL (``tests/postgres_server.py``)
that the test stops and starts; the shared one is never touched.
"""

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.services import ws_ticket_issue
from core import router
from core.errors import CLOSE_TRY_AGAIN
from core.redis import bus, key
from switchboard_client import ConnectError, Connection
from tests.message_stream import MessageStream, assert_stored_once, live_both_ways
from tests.postgres_server import postgres_server

PASSWORD = "correct-horse-battery-9"
RECOVERY_TIMEOUT_SECONDS = 30
OUTAGE_SECONDS = 4
# Every send is answered within this, PostgreSQL away or not (DB_POOL_TIMEOUT is 2 s).
REPLY_BOUND_SECONDS = 5


@pytest.fixture
def private_db():
    with postgres_server() as server:
        yield server


async def _ws_close_code(url: str, headers: dict | None = None) -> int:
    """Connect; return the close code the server sent after accepting (no hello)."""
    try:
        conn = await Connection.open(url, headers=headers, open_timeout=15)
    except ConnectError as exc:
        assert exc.close_code is not None, exc
        return exc.close_code
    await conn.close()
    raise AssertionError(f"the socket opened: {conn.hello_frame}")


async def _ws_hello(url: str, headers: dict | None = None) -> dict:
    async with await Connection.open(url, headers=headers, open_timeout=15) as conn:
        return conn.hello_frame


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


def _setup(url: str) -> tuple[str, str, int]:
    """Sign up two users, open their direct conversation and accept it; return tokens and its id."""
    with httpx.Client(base_url=url, timeout=20) as http:
        tokens = []
        for username in ("ann", "bob"):
            res = http.post("/api/auth/signup", json={"username": username, "password": PASSWORD})
            assert res.status_code == 201, res.text
            tokens.append(res.json()["token"])
        bob_id = res.json()["user_id"]
        res = http.post(
            "/api/conversations",
            json={"kind": "direct", "user_id": bob_id},
            headers={"Authorization": f"Token {tokens[0]}"},
        )
        assert res.status_code == 201, res.text
        cid = res.json()["id"]
        res = http.post(  # bob consents: the stream is longer than a request may be
            f"/api/conversations/{cid}/accept", headers={"Authorization": f"Token {tokens[1]}"}
        )
        assert res.status_code == 200, res.text
    return tokens[0], tokens[1], cid


def _rest_reads(url: str, token: str, path: str, n: int) -> list[int]:
    """``n`` concurrent GETs (as many pooled connections); return their statuses."""

    def get(_: int) -> int:
        with httpx.Client(base_url=url, timeout=20) as http:
            return http.get(path, headers={"Authorization": f"Token {token}"}).status_code

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(get, range(n)))


def _stored(db_url: str, cid: int) -> list[tuple[str, int]]:
    with psycopg.connect(db_url) as pg:
        rows = pg.execute(
            "SELECT client_id, seq FROM conversations_message WHERE conversation_id = %s", [cid]
        ).fetchall()
    return [(client_id, seq) for client_id, seq in rows]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_postgres_stopped_and_restarted_under_a_stream_loses_and_duplicates_nothing(
    servers, private_db
):
    """PostgreSQL stops mid-stream for a few seconds and starts again: every request is
    answered (``unavailable`` while it is away), the same processes and sockets store and
    deliver again after, and every acknowledged message is stored and delivered once, in
    order."""
    a, b = servers(2, DATABASE_URL=private_db.url(), DB_POOL_TIMEOUT="2")
    ann_token, bob_token, cid = await asyncio.to_thread(_setup, a.url)
    messages = f"/api/conversations/{cid}/messages"
    for server in (a, b):  # each process' pool holds several connections when PostgreSQL stops
        assert await asyncio.to_thread(_rest_reads, server.url, ann_token, messages, 4) == [200] * 4
    # Ann sends on b, bob reads on a; the probe is another of ann's devices, on a.
    stream, probe = await MessageStream.started_with_probe(b, a, (ann_token, bob_token), cid)
    try:
        await stream.wait_received(20, timeout=20)
        logs_from = [server.log.stat().st_size for server in (a, b)]
        await asyncio.to_thread(private_db.stop)  # every connection closed at once
        acked_before = len(stream.acked)
        # Requests that read or write PostgreSQL on an open socket: an error, not silence.
        for frame_type, data in [
            ("sync", {"conversations": {str(cid): 0}}),
            ("message.edit", {"message_id": 1, "body": "edited"}),
        ]:
            reply = await probe.request(frame_type, data, timeout=REPLY_BOUND_SECONDS)
            assert not reply["ok"] and reply["error"]["code"] == "unavailable", reply
            assert reply["error"]["retry_after"] >= 1
        await asyncio.sleep(OUTAGE_SECONDS)
        assert len(stream.acked) <= acked_before + 1  # (one may have been answered as it stopped)
        assert stream.errors["unavailable"] >= 3, stream.errors
        await asyncio.to_thread(private_db.start)
        # The pools' check replaces the connections PostgreSQL closed: no request fails.
        for server in (a, b):
            statuses = await asyncio.to_thread(_rest_reads, server.url, ann_token, messages, 4)
            assert statuses == [200] * 4
        await stream.wait_acked(len(stream.acked) + 40, timeout=30)
        await stream.stop_sending()
        await stream.wait_received(len(stream.acked), timeout=20)
        stream.assert_exactly_once()
        assert set(stream.errors) == {"unavailable"}, stream.errors
        assert stream.slowest_reply < REPLY_BOUND_SECONDS, stream.slowest_reply
        # The sockets of the outage lived through it.
        assert stream.sender_reconnects == stream.reader_reconnects == 0
        edit = await probe.request("message.edit", {"message_id": 1, "body": "edited"})
        assert edit["ok"], edit
    finally:
        await stream.close()
        await probe.close()
    assert_stored_once(await asyncio.to_thread(_stored, private_db.url(), cid), stream.acked)
    await live_both_ways(a, b, ann_token, bob_token, cid, after_seq=len(stream.acked))
    for server, start in zip((a, b), logs_from, strict=True):
        outage_log = server.log.read_text(errors="replace")[start:]
        assert "Traceback" not in outage_log, outage_log[-3000:]  # a line per kind, no more
