"""Presence across real server processes: devices on two servers, a SIGKILLed server, and
the connections-per-user bound under racing connects, silent clients and a killed server."""

import asyncio
import time

import pytest
from channels.db import database_sync_to_async

from conversations.services import conversation_direct_get_or_create
from core.errors import CLOSE_TOO_MANY_CONNECTIONS
from presence.services import presence_sweep
from switchboard_client import ConnectError, Connection
from tests.conftest import NetClient, accept_all, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class Remote(NetClient):
    """A client of a real server over a real socket, that also waits for presence events."""

    async def request(self, frame_type: str, data: dict | None = None, timeout: float = 10):
        return await super().request(frame_type, data, timeout)

    async def presence(self, user_id: int, timeout: float = 10) -> dict | None:
        """Return the next presence event about ``user_id``, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for i, frame in enumerate(self.events):
                if frame["type"] == "presence" and frame["data"]["user_id"] == user_id:
                    return self.events.pop(i)["data"]
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                self.events.append(await self.recv(left))
            except TimeoutError:
                return None


async def _connect(server, user) -> Remote:
    token = await database_sync_to_async(token_for)(user)
    return await Remote.open(server.ws_url, token, sync={}, open_timeout=20)


def _pair(make_user):
    ann, bob = make_user(), make_user()
    accept_all(conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)[0])
    return ann, bob


async def test_devices_on_two_server_processes_count_once(servers, make_user):
    grace = 1.0
    a, b = servers(2, LIMIT_PRESENCE_OFFLINE_GRACE_SECONDS=str(grace))
    ann, bob = await database_sync_to_async(_pair)(make_user)
    sweep = database_sync_to_async(presence_sweep)
    bob_c = await _connect(b, bob)
    phone = await _connect(a, ann)
    event = await bob_c.presence(ann.pk)  # announced by server a, delivered by server b
    assert event is not None and event["online"] is True
    laptop = await _connect(b, ann)
    assert await bob_c.presence(ann.pk, timeout=1) is None  # the second device says nothing
    await phone.close()
    assert ann.pk not in await sweep(now=time.time() + grace + 1)  # the laptop still lives
    assert await bob_c.presence(ann.pk, timeout=1) is None
    reply = await bob_c.request("presence.query", {"user_ids": [ann.pk]})
    assert reply["data"]["presence"][0]["online"] is True
    await laptop.close()
    await asyncio.sleep(0.5)  # let server b run the close handler
    assert ann.pk in await sweep(now=time.time() + grace + 1)
    event = await bob_c.presence(ann.pk)
    assert event is not None and event["online"] is False
    reply = await bob_c.request("presence.query", {"user_ids": [ann.pk]})
    assert reply["data"]["presence"][0]["online"] is False
    await bob_c.close()


async def test_users_of_a_killed_server_go_offline_after_the_ttl(servers, make_user):
    ttl = 3.0  # the bound is TTL + sweep period; tests shorten the TTL (LIMITS, env)
    a, b = servers(2, LIMIT_PRESENCE_TTL_SECONDS=str(ttl))
    ann, bob = await database_sync_to_async(_pair)(make_user)
    bob_c = await _connect(b, bob)
    await _connect(a, ann)
    event = await bob_c.presence(ann.pk)
    assert event is not None and event["online"] is True
    a.kill()  # SIGKILL: no disconnect handler runs on server a
    swept: list[int] = []
    deadline = time.monotonic() + 60
    offline = None
    while offline is None and time.monotonic() < deadline:
        # Bob's server keeps him alive (his TTL is as short as ann's); he still answers.
        assert (await bob_c.request("ping"))["ok"]
        swept += await database_sync_to_async(presence_sweep)()
        offline = await bob_c.presence(ann.pk, timeout=0.5)
    assert offline is not None and offline["online"] is False
    assert ann.pk in swept and bob.pk not in swept
    await bob_c.close()


# -- the connection bound (WS_CONNECTIONS_PER_USER, close 4409; Hardening 7) -------------


async def _try_open(server, token: str):
    """Open a socket; return it after ``hello``, or the code it was closed with instead."""
    try:
        return await Connection.open(server.ws_url, token=token, open_timeout=60)
    except ConnectError as exc:
        if exc.close_code is None:
            raise
        return exc.close_code


async def test_racing_connects_over_two_processes_open_at_most_the_limit(servers, make_user):
    a, b = servers(2)
    ann = await database_sync_to_async(make_user)()
    token = await database_sync_to_async(token_for)(ann)
    results = await asyncio.gather(*(_try_open(a if i % 2 else b, token) for i in range(100)))
    opened = [r for r in results if not isinstance(r, int)]
    refused = [r for r in results if isinstance(r, int)]
    assert len(opened) == 20  # the limit, exactly: the count and the registration are one step
    assert refused == [CLOSE_TOO_MANY_CONNECTIONS] * 80
    for ws in opened:
        await ws.close()


async def test_sockets_that_never_ping_keep_counting(servers, make_user):
    ttl, limit = 2.0, 3
    (a,) = servers(1, LIMIT_PRESENCE_TTL_SECONDS=str(ttl), LIMIT_WS_CONNECTIONS_PER_USER=str(limit))
    ann = await database_sync_to_async(make_user)()
    token = await database_sync_to_async(token_for)(ann)
    silent = [await _try_open(a, token) for _ in range(limit)]  # never send a frame
    await asyncio.sleep(3 * ttl)  # the old rule forgot them after one TTL without a ping
    assert await _try_open(a, token) == CLOSE_TOO_MANY_CONNECTIONS
    await silent.pop().close()
    await asyncio.sleep(0.5)  # the server runs the close's leave
    again = await _try_open(a, token)
    assert not isinstance(again, int)
    for ws in [*silent, again]:
        await ws.close()


async def test_sockets_of_a_killed_process_stop_counting_within_the_ttl(servers, make_user):
    ttl, limit = 2.0, 3
    a, b = servers(2, LIMIT_PRESENCE_TTL_SECONDS=str(ttl), LIMIT_WS_CONNECTIONS_PER_USER=str(limit))
    ann = await database_sync_to_async(make_user)()
    token = await database_sync_to_async(token_for)(ann)
    on_a = [await _try_open(a, token) for _ in range(limit)]
    assert all(not isinstance(ws, int) for ws in on_a)
    await asyncio.sleep(ttl)  # server a has refreshed them: they count past their first TTL
    assert await _try_open(b, token) == CLOSE_TOO_MANY_CONNECTIONS
    a.kill()  # SIGKILL: no disconnect hook runs, its sockets just stop being refreshed
    killed = time.monotonic()
    while True:
        result = await _try_open(b, token)
        if not isinstance(result, int):
            break
        assert result == CLOSE_TOO_MANY_CONNECTIONS
        # The documented bound: TTL after the last refresh (plus a connect's own time).
        assert time.monotonic() - killed < ttl + 1.0
        await asyncio.sleep(0.1)
    await result.close()
