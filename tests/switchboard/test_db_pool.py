"""A web process holds a bounded number of PostgreSQL connections, whatever the load
(settings: Django's psycopg pool, ``DB_POOL_MAX_SIZE``, and the event loop's two
connections of its own: the message writer's and the socket-opening reads')."""

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from channels.db import database_sync_to_async
from django.db import connection

from conversations.services import conversation_direct_get_or_create
from tests.conftest import NetClient, accept_all, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

POOL_MAX = 3


def _connections(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [name])
        return cursor.fetchone()[0]


async def test_a_burst_of_rest_and_websocket_requests_stays_within_the_pool(servers, make_user):
    name = f"sbtest-pool-{uuid.uuid4().hex[:8]}"
    (server,) = servers(1, DB_POOL_MAX_SIZE=str(POOL_MAX), DB_APPLICATION_NAME=name)

    def setup():
        users = [make_user() for _ in range(8)]
        cids = [
            accept_all(conversation_direct_get_or_create(user_id=a.pk, other_user_id=b.pk)[0]).pk
            for a, b in zip(users[::2], users[1::2], strict=True)
        ]
        return [token_for(u) for u in users], cids

    tokens, cids = await database_sync_to_async(setup)()

    def rest(i: int) -> int:
        user = i % len(tokens)
        headers = {"Authorization": f"Token {tokens[user]}"}
        paths = ["/api/conversations", "/api/unread", f"/api/conversations/{cids[user // 2]}"]
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            return sum(client.get(paths[j % 3]).status_code == 200 for j in range(50))

    async def sockets(i: int) -> int:
        ws = await NetClient.open(server.ws_url, tokens[i], sync={})
        try:
            ok = 0
            for n in range(40):
                reply = await ws.request(
                    "message.send",
                    {"conversation_id": cids[i // 2], "body": f"m{n}", "client_id": f"{i}-{n}"},
                )
                ok += reply["ok"]
            return ok
        finally:
            await ws.close()

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(16) as pool:
        rest_done = [loop.run_in_executor(pool, rest, i) for i in range(16)]
        results = await asyncio.gather(*rest_done, *(sockets(i) for i in range(8)))
    assert results == [50] * 16 + [40] * 8  # 800 REST requests, 320 sends: all answered
    held = await database_sync_to_async(_connections)(name)
    # The pool, and the loop's two of its own: the message writer's and the reads'.
    assert 0 < held <= POOL_MAX + 2
