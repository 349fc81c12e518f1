"""PostgreSQL behind PgBouncer in transaction mode (issue 16, item 2; docs/deployment.md,
"PgBouncer"): two web processes with ``DB_POOLER=transaction`` reach the test database only
through a PgBouncer of the test's own, under a messaging load (WebSocket streams that resume,
REST sends and reads side by side). Every message is stored once, in order, and the server
connections stay within PgBouncer's pool however many clients share them.
"""

import asyncio
import os
import runpy
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from core.db import LoopConnection
from tests.cluster.edge_processes import pgbouncer, web_processes
from tests.conftest import ROOT, SERVER_ARGS, NetClient
from tests.message_stream import MessageStream, assert_stored_once

SETTINGS = ROOT / "switchboard" / "settings.py"

PASSWORD = "correct-horse-battery-9"
POOL_SIZE = 3  # PgBouncer's server connections to the test database
WEB_POOL_MAX = 2  # Django's pool per web process (+ the loop's two connections)
STREAMS = 3
STREAM_MESSAGES = 60
REST_SENDERS = 2
REST_MESSAGES = 40
SAMPLE_SECONDS = 0.2


@pytest.fixture
def bouncer(transactional_db):
    db = connection.settings_dict
    with pgbouncer(
        target_host=db["HOST"], target_port=int(db["PORT"]), user=db["USER"], pool_size=POOL_SIZE
    ) as server:
        yield server


def _signup(http: httpx.Client, username: str) -> tuple[str, int]:
    res = http.post("/api/auth/signup", json={"username": username, "password": PASSWORD})
    assert res.status_code == 201, res.text
    return res.json()["token"], res.json()["user_id"]


def _pair(http: httpx.Client, tag: str) -> tuple[str, str, int]:
    """Two new users and their accepted direct conversation: (token, token, id)."""
    (ann, _), (bob, bob_id) = _signup(http, f"ann{tag}"), _signup(http, f"bob{tag}")
    res = http.post(
        "/api/conversations",
        json={"kind": "direct", "user_id": bob_id},
        headers={"Authorization": f"Token {ann}"},
    )
    assert res.status_code == 201, res.text
    cid = res.json()["id"]
    res = http.post(f"/api/conversations/{cid}/accept", headers={"Authorization": f"Token {bob}"})
    assert res.status_code == 200, res.text
    return ann, bob, cid


def _rest_sends(url: str, token: str, cid: int, n: int) -> dict[str, int]:
    """Send ``n`` messages by REST, each retried with its client_id until stored, reading the
    history between sends; return client_id -> seq."""
    acked: dict[str, int] = {}
    headers = {"Authorization": f"Token {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=20) as http:
        for i in range(n):
            body = {"body": f"rest {i}", "client_id": f"r{i}"}
            for _ in range(5):
                res = http.post(f"/api/conversations/{cid}/messages", json=body)
                if res.status_code in (200, 201):
                    acked[body["client_id"]] = res.json()["seq"]
                    break
            else:
                raise AssertionError(f"r{i} never stored: {res.status_code} {res.text}")
            assert http.get(f"/api/conversations/{cid}/messages").status_code == 200
    return acked


def _stored(database_url: str, cid: int) -> list[tuple[str, int]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT client_id, seq FROM conversations_message WHERE conversation_id = %s "
            "ORDER BY seq",
            [cid],
        ).fetchall()
    return [(client_id, seq) for client_id, seq in rows]


def _server_connections(app_name: str) -> int:
    """Connections PostgreSQL holds for the web processes (PgBouncer's server side: it
    passes each client's application_name on)."""
    with psycopg.connect(_direct_url()) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [app_name]
        ).fetchone()
    return int(row[0]) if row else 0


def _direct_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class _Sampler:
    """The most server and client connections seen, sampled until ``stop``."""

    def __init__(self, bouncer, database: str, app_name: str) -> None:
        self.bouncer, self.database, self.app_name = bouncer, database, app_name
        self.max_servers = self.max_pg = self.max_clients = self.max_waiting = 0
        self.samples = 0
        self._stop = asyncio.Event()

    def sample(self) -> None:
        pools = [p for p in self.bouncer.show("POOLS") if p["database"] == self.database]
        servers = [s for s in self.bouncer.show("SERVERS") if s["database"] == self.database]
        clients = [c for c in self.bouncer.show("CLIENTS") if c["database"] == self.database]
        self.max_servers = max(self.max_servers, len(servers))
        self.max_clients = max(self.max_clients, len(clients))
        self.max_waiting = max(self.max_waiting, sum(p["cl_waiting"] for p in pools))
        self.max_pg = max(self.max_pg, _server_connections(self.app_name))
        self.samples += 1

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(SAMPLE_SECONDS)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_two_web_processes_through_pgbouncer_store_everything_once_within_its_pool(
    server_env, bouncer
):
    database = connection.settings_dict["NAME"]
    app_name = f"sbtest-pgb-{uuid.uuid4().hex[:8]}"
    env = {
        **server_env,
        "DATABASE_URL": bouncer.url(database),
        "DB_POOLER": "transaction",
        "DB_POOL_MAX_SIZE": str(WEB_POOL_MAX),
        "DB_APPLICATION_NAME": app_name,
    }
    with web_processes(env, SERVER_ARGS) as (a, b):
        await _load_through(bouncer, a, b, database, app_name)


async def _load_through(bouncer, a, b, database: str, app_name: str) -> None:

    def setup():
        with httpx.Client(base_url=a.url, timeout=20) as http:
            return [_pair(http, f"{i}_{os.getpid()}") for i in range(STREAMS + REST_SENDERS)]

    pairs = await asyncio.to_thread(setup)
    sampler = _Sampler(bouncer, database, app_name)
    sampling = asyncio.create_task(sampler.run())
    # WebSocket streams: sent on a, read on b (the channel layer between them).
    streams = [
        MessageStream(
            send_url=a.ws_url, read_url=b.ws_url, sender_token=ann, reader_token=bob,
            conversation_id=cid,
        )
        for ann, bob, cid in pairs[:STREAMS]
    ]  # fmt: skip
    loop = asyncio.get_running_loop()
    try:
        for stream in streams:
            await stream.start()
        with ThreadPoolExecutor(REST_SENDERS) as pool:
            rest = [
                loop.run_in_executor(pool, _rest_sends, server.url, ann, cid, REST_MESSAGES)
                for server, (ann, _, cid) in zip((b, a), pairs[STREAMS:], strict=True)
            ]
            half = STREAM_MESSAGES // 2
            await asyncio.gather(*(s.wait_received(half, timeout=60) for s in streams))
            # Every reader drops its socket and resumes from its cursor (``sync``): its read
            # loop sees the close as any other.
            for stream in streams:
                await stream._reader.conn.close()
            for stream in streams:
                await stream.wait_acked(STREAM_MESSAGES, timeout=60)
                await stream.stop_sending()
            for stream in streams:
                await stream.wait_received(len(stream.acked), timeout=30)
                stream.assert_exactly_once()
                assert stream.reader_reconnects >= 1
            rest_acked = await asyncio.gather(*rest)
    finally:
        sampler.stop()
        await sampling
        for stream in streams:
            await stream.close()

    for stream in streams:
        rows = await asyncio.to_thread(_stored, _direct_url(), stream.conversation_id)
        assert_stored_once(rows, stream.acked)
    for acked, (_, _, cid) in zip(rest_acked, pairs[STREAMS:], strict=True):
        assert sorted(acked.values()) == list(range(1, REST_MESSAGES + 1))
        assert_stored_once(await asyncio.to_thread(_stored, _direct_url(), cid), acked)
    # A fresh device replays a whole stream from the start, in order, through the pooler.
    ann, _, cid = pairs[0]
    late = await NetClient.open(b.ws_url, ann, sync={str(cid): 0})
    try:
        replay = [e["data"]["seq"] for e in late.events if e["type"] == "message.new"]
        assert replay == list(range(1, STREAM_MESSAGES + 1)), replay
    finally:
        await late.close()

    print(  # the figures of docs/deployment.md ("PgBouncer"), with -rP
        f"pgbouncer: {sampler.samples} samples, max server connections {sampler.max_servers}, "
        f"pg_stat_activity {sampler.max_pg}, clients {sampler.max_clients}, "
        f"waiting {sampler.max_waiting}; slowest send "
        f"{max(s.slowest_reply for s in streams):.3f} s"
    )
    # Bounded during the load: PostgreSQL saw at most PgBouncer's pool, PgBouncer at most
    # each process' pool and loop connections as clients.
    assert sampler.samples >= 5
    assert 0 < sampler.max_servers <= POOL_SIZE, sampler.__dict__
    assert 0 < sampler.max_pg <= POOL_SIZE, sampler.__dict__  # (the name reaches PostgreSQL)
    assert sampler.max_clients <= 2 * (WEB_POOL_MAX + 2), sampler.__dict__
    # ... and after it: nothing grew while idle.
    await asyncio.sleep(1)
    after = _Sampler(bouncer, database, app_name)
    await asyncio.to_thread(after.sample)
    assert after.max_servers <= POOL_SIZE and after.max_pg <= POOL_SIZE, after.__dict__
    assert after.max_clients <= 2 * (WEB_POOL_MAX + 2), after.__dict__
    for server in (a, b):
        log = server.log.read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]
        assert "prepared statement" not in log, log[-3000:]


@pytest.mark.django_db(transaction=True)
def test_prepared_statements_break_behind_transaction_pooling_which_is_why_they_are_off(
    bouncer,
):
    """The hazard DB_POOLER=transaction avoids: psycopg's prepared statements (the loop
    connections' with DB_LOOP_PREPARE) land on whichever server connection PgBouncer 1.18
    lends, where another client's of the same name already is, or none is."""
    url = bouncer.url(connection.settings_dict["NAME"])
    with (
        psycopg.connect(url, autocommit=True, prepare_threshold=0) as one,
        psycopg.connect(url, autocommit=True, prepare_threshold=0) as two,
    ):
        one.execute("SELECT %s::int", [1])
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
            two.execute("SELECT %s::int", [2])  # the same server connection, lent again


@pytest.mark.parametrize(
    ("pooler", "prepare", "server_side_cursors"),
    [("transaction", False, False), ("", True, True)],
)
def test_db_pooler_transaction_turns_off_what_transaction_pooling_breaks(
    monkeypatch, pooler, prepare, server_side_cursors
):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@127.0.0.1:6432/db")
    monkeypatch.setenv("DB_POOLER", pooler)
    monkeypatch.delenv("DB_LOOP_PREPARE", raising=False)
    values = runpy.run_path(str(SETTINGS))  # the settings module, read afresh
    assert values["DB_POOLER"] == pooler
    assert values["DB_LOOP_PREPARE"] is prepare
    disabled = values["DATABASES"]["default"].get("DISABLE_SERVER_SIDE_CURSORS", False)
    assert disabled is not server_side_cursors


def test_an_unknown_db_pooler_stops_the_process(monkeypatch):
    monkeypatch.setenv("DB_POOLER", "session")
    with pytest.raises(ImproperlyConfigured, match="DB_POOLER must be"):
        runpy.run_path(str(SETTINGS))


def test_the_writers_connection_keeps_no_session_settings_behind_a_transaction_pooler(settings):
    settings.DB_POOLER = "transaction"
    assert LoopConnection(autocommit=True, generic_plans=True).generic_plans is False
    settings.DB_POOLER = ""
    assert LoopConnection(autocommit=True, generic_plans=True).generic_plans is True
