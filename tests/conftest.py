"""Fixtures shared by the whole suite: users, API clients, WebSocket clients, servers.

Everything talks to the real PostgreSQL and Redis named in ``tests/settings.py``.
"""

import asyncio
import json
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis
from channels.testing import WebsocketCommunicator
from django.conf import settings
from rest_framework.test import APIClient

from core.db import loop_connections_close
from switchboard.embedded_redis import free_port  # noqa: F401  (tests/switchboard imports it)
from switchboard.servers import ServerProcess
from switchboard_client import Connection

ROOT = Path(__file__).resolve().parent.parent
# Logs of the server, worker and beat processes a test starts.
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session", autouse=True)
def _redis_keys_cleanup():
    """Delete this run's keys (and only them) from both Redis roles at the end."""
    yield
    for url in (settings.REDIS_URL, settings.CACHE_URL):
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}:*", count=1000):
            client.delete(key)
        client.close()


@pytest.fixture(autouse=True)
def _loop_connections_closed():
    """Each test's event loops end with it: so do their PostgreSQL connections (the writer's),
    or they would pile up until garbage collection and keep the test database from being
    dropped."""
    yield
    loop_connections_close()


@pytest.fixture
def loop_statements(monkeypatch):
    """``loop_statements(module)``: the SQL of every ``loop_fetch`` that ``module`` makes
    from now on, in order (each still runs for real)."""

    def record(module) -> list[str]:
        seen: list[str] = []
        real = module.loop_fetch

        async def recorded(sql, params):
            seen.append(sql)
            return await real(sql, params)

        monkeypatch.setattr(module, "loop_fetch", recorded)
        return seen

    return record


@pytest.fixture
def make_user(django_user_model):
    """Create an active user with a profile; ``make_user("ann", interests=[...])``."""
    from profiles.services import profile_update

    counter = iter(range(1, 10_000))

    def make(username=None, password="correct-horse-battery-9", **profile):
        username = username or f"user{next(counter)}_{os.getpid()}"
        user = django_user_model.objects.create_user(username=username, password=password)
        if profile:
            profile_update(user=user, **profile)
        return user

    return make


@pytest.fixture
def api(make_user):
    """An API client signed in as a fresh user (``api.user``)."""
    client = APIClient()
    client.user = make_user()
    client.force_authenticate(client.user)
    return client


def api_as(user) -> APIClient:
    client = APIClient()
    client.user = user
    client.force_authenticate(user)
    return client


def token_for(user) -> str:
    from accounts.services import token_issue

    return token_issue(user=user)


class WsClient:
    """An in-process WebSocket client speaking the Switchboard protocol."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.comm = communicator
        self.refs = iter(range(1, 1_000_000))
        self.events: list[dict] = []
        self.hello: dict | None = None

    async def recv(self, timeout: float = 3.0) -> dict:
        """Return the next frame; a timeout leaves the application running."""
        if self.comm.future.done():
            self.comm.future.result()  # re-raise the consumer's crash, if any
        async with asyncio.timeout(timeout):
            out = await self.comm.output_queue.get()
        if out["type"] == "websocket.close":
            raise ConnectionError(f"closed with {out.get('code')}")
        return json.loads(out["text"])

    async def request(self, frame_type: str, data: dict | None = None, timeout: float = 5.0):
        """Send a request and return its reply; events that arrive first are kept."""
        ref = str(next(self.refs))
        await self.send_raw({"type": frame_type, "ref": ref, "data": data or {}})
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.recv(timeout=max(0.1, deadline - time.monotonic()))
            if frame["type"] == "reply" and frame["ref"] == ref:
                return frame
            self.events.append(frame)

    async def send_raw(self, frame: dict) -> None:
        await self.comm.send_to(text_data=json.dumps(frame))

    async def event(self, event_type: str, timeout: float = 3.0) -> dict:
        """Return the next kept or incoming event of ``event_type``."""
        for i, frame in enumerate(self.events):
            if frame["type"] == event_type:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.recv(timeout=max(0.1, deadline - time.monotonic()))
            if frame["type"] == event_type:
                return frame
            self.events.append(frame)

    async def drain(self, wait: float = 0.3) -> list[dict]:
        """Return every kept event plus those arriving within ``wait`` seconds."""
        while True:
            try:
                self.events.append(await self.recv(timeout=wait))
            except TimeoutError:
                break
        out, self.events = self.events, []
        return out

    async def close(self):
        await self.comm.disconnect()


@asynccontextmanager
async def ws_connect(user=None, *, headers=None, path="/ws", sync: dict | None = None):
    """Connect as ``user`` (token header) and, unless ``sync`` is None, send ``sync``."""
    from switchboard.asgi import application

    if headers is None:
        from channels.db import database_sync_to_async

        token = await database_sync_to_async(token_for)(user)
        headers = [(b"authorization", f"Token {token}".encode())]
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    client = WsClient(comm)
    try:
        client.hello = await client.recv()
        if sync is not None:
            reply = await client.request("sync", {"conversations": sync})
            assert reply["ok"], reply
            client.sync_reply = reply
        yield client
    finally:
        if not comm.future.done():
            await comm.disconnect()


class NetClient(WsClient):
    """A client of a server process over a real socket: the Python client's one-socket layer
    (``switchboard_client.Connection``: token, hello, JSON frames) under the helpers of the
    in-process client (``request`` returns the reply frame, ``event``, ``drain``)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.refs = iter(range(1, 1_000_000))
        self.events: list[dict] = []
        self.hello: dict | None = conn.hello_frame

    @classmethod
    async def open(
        cls, ws_url: str, token: str, sync: dict | None = None, open_timeout: float = 10
    ) -> "NetClient":
        client = cls(await Connection.open(ws_url, token=token, open_timeout=open_timeout))
        if sync is not None:
            reply = await client.request("sync", {"conversations": sync})
            assert reply["ok"], reply
            client.sync_reply = reply
        return client

    async def recv(self, timeout: float = 5.0) -> dict:
        return await self.conn.recv(timeout)

    async def send_raw(self, frame: dict) -> None:
        await self.conn.send(frame)

    async def close(self):
        await self.conn.close()


# The uvicorn options of the test servers (the bench uses the Procfile's own): the WebSocket
# ones as in the Procfile, so the synchronous write of switchboard.websocket is what runs.
SERVER_ARGS = [
    "--ws", "switchboard.websocket:WSProtocol", "--ws-per-message-deflate", "false",
    "--ws-max-size", "65536", "--lifespan", "off", "--no-access-log",
]  # fmt: skip
# Generous: on a loaded 2-core machine (other runs, a parallel worker) a start can take long.
SERVER_START_TIMEOUT_SECONDS = 60


def process_env(**extra: str) -> dict:
    """Environment of a server, worker or beat process using this run's database and prefix."""
    from django.db import connection

    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        SB_TEST_PREFIX=settings.REDIS_KEY_PREFIX,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@pytest.fixture
def server_env(transactional_db):
    """Environment for a server process using this test's database and Redis prefix."""
    return process_env()


@pytest.fixture
def servers(server_env):
    """Start real server processes: ``a, b = servers(2)``, side by side; all stopped
    afterwards."""
    started: list[ServerProcess] = []

    def start(n: int = 1, **extra_env):
        procs = [
            ServerProcess(
                env={**server_env, **extra_env},
                log_dir=ARTIFACTS,
                args=SERVER_ARGS,
                start_timeout=SERVER_START_TIMEOUT_SECONDS,
            )
            for _ in range(n)
        ]
        # Side by side: all spawned, then each waited for. Listed before it is ready: one
        # that never answers is stopped too, not left running for the rest of the session.
        for p in procs:
            started.append(p)
            p.spawn()
        for p in procs:
            p.wait_ready()
        return procs

    yield start
    for p in started:
        p.terminate()
    for p in started:
        p.stop()


def accept_all(conversation):
    """Accept every pending membership of ``conversation`` (a Conversation or its id) through
    the service, as each invitee would: for tests about what members do once they consented.
    Returns its argument."""
    from conversations.models import Membership
    from conversations.services import membership_accept

    cid = getattr(conversation, "pk", conversation)
    for uid in Membership.objects.filter(
        conversation_id=cid, state=Membership.State.PENDING
    ).values_list("user_id", flat=True):
        membership_accept(user_id=uid, conversation_id=cid)
    return conversation
