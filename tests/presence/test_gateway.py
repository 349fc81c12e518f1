"""Presence across real server processes: devices on two servers, a SIGKILLed server."""

import asyncio
import json
import time

import pytest
import websockets
from channels.db import database_sync_to_async

from conversations.services import conversation_direct_get_or_create
from presence.services import presence_sweep
from tests.conftest import token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class Remote:
    """A client of a real server over a real socket (the ``websockets`` library)."""

    def __init__(self, ws):
        self.ws = ws
        self.events: list[dict] = []
        self.refs = iter(range(1, 1_000_000))

    async def recv(self, timeout: float) -> dict:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def request(self, frame_type: str, data: dict | None = None, timeout: float = 10):
        ref = str(next(self.refs))
        await self.ws.send(json.dumps({"type": frame_type, "ref": ref, "data": data or {}}))
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.recv(max(0.1, deadline - time.monotonic()))
            if frame["type"] == "reply" and frame.get("ref") == ref:
                return frame
            self.events.append(frame)

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


async def _connect(server, user) -> tuple:
    token = await database_sync_to_async(token_for)(user)
    ws = await websockets.connect(
        server.ws_url, additional_headers={"Authorization": f"Token {token}"}, open_timeout=20
    )
    client = Remote(ws)
    hello = await client.recv(20)
    assert hello["type"] == "hello"
    assert (await client.request("sync", {"conversations": {}}))["ok"]
    return ws, client


def _pair(make_user):
    ann, bob = make_user(), make_user()
    conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    return ann, bob


async def test_devices_on_two_server_processes_count_once(servers, make_user):
    grace = 1.0
    a, b = servers(2, LIMIT_PRESENCE_OFFLINE_GRACE_SECONDS=str(grace))
    ann, bob = await database_sync_to_async(_pair)(make_user)
    sweep = database_sync_to_async(presence_sweep)
    bob_ws, bob_c = await _connect(b, bob)
    phone, _ = await _connect(a, ann)
    event = await bob_c.presence(ann.pk)  # announced by server a, delivered by server b
    assert event is not None and event["online"] is True
    laptop, _ = await _connect(b, ann)
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
    await bob_ws.close()


async def test_users_of_a_killed_server_go_offline_after_the_ttl(servers, make_user):
    ttl = 3.0  # the bound is TTL + sweep period; tests shorten the TTL (LIMITS, env)
    a, b = servers(2, LIMIT_PRESENCE_TTL_SECONDS=str(ttl))
    ann, bob = await database_sync_to_async(_pair)(make_user)
    bob_ws, bob_c = await _connect(b, bob)
    await _connect(a, ann)
    event = await bob_c.presence(ann.pk)
    assert event is not None and event["online"] is True
    a.kill()  # SIGKILL: no disconnect handler runs on server a
    swept: list[int] = []
    deadline = time.monotonic() + 60
    offline = None
    while offline is None and time.monotonic() < deadline:
        # Bob's heartbeat keeps him alive (his TTL is as short as ann's).
        assert (await bob_c.request("ping"))["ok"]
        swept += await database_sync_to_async(presence_sweep)()
        offline = await bob_c.presence(ann.pk, timeout=0.5)
    assert offline is not None and offline["online"] is False
    assert ann.pk in swept and bob.pk not in swept
    await bob_ws.close()
