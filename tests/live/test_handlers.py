"""live.subscribe / live.unsubscribe over the gateway (in-process)."""

import pytest
from channels.db import database_sync_to_async

from live import services
from tests.conftest import ws_connect

pytestmark = pytest.mark.django_db(transaction=True)

publish = database_sync_to_async(services.live_stats_publish)


async def _only_stats_after(ws, now: float) -> list[dict]:
    """Subscribe, publish stats at ``now`` and return every live.stats up to that one.

    Pushes from one publisher arrive in order, so anything published before (and wrongly
    delivered) shows up first.
    """
    await ws.request("live.subscribe")
    await publish(now=now)
    seen = []
    while True:
        event = await ws.event("live.stats", timeout=10)
        seen.append(event["data"])
        if event["data"]["at"] == services.selectors.now_iso(now):
            return seen


async def test_subscribers_get_live_stats_and_others_do_not(make_user):
    ann, bob = await database_sync_to_async(make_user)(), await database_sync_to_async(make_user)()
    async with ws_connect(ann, sync={}) as subscriber, ws_connect(bob, sync={}) as other:
        reply = await subscriber.request("live.subscribe")
        assert reply["ok"] is True
        assert set(reply["data"]) == {"stats"}
        stats = await publish(now=1_000_000.0)
        event = await subscriber.event("live.stats", timeout=10)
        assert event["data"] == stats
        assert len(await _only_stats_after(other, 2_000_000.0)) == 1


async def test_subscribe_returns_the_last_stats_and_unsubscribe_stops_them(make_user):
    ann = await database_sync_to_async(make_user)()
    stats = await publish()
    async with ws_connect(ann, sync={}) as ws:
        reply = await ws.request("live.subscribe")
        assert reply["data"]["stats"] == stats
        assert (await ws.request("live.subscribe"))["ok"] is True  # twice is harmless
        assert (await ws.request("live.unsubscribe"))["ok"] is True
        await publish(now=1_000_000.0)
        # Nothing while unsubscribed. (The process may keep the group subscribed a while,
        # core/layer.py; an event still on its way when the socket subscribes again may
        # then reach it, as when another socket of the process listens.)
        assert [e for e in await ws.drain(1.0) if e["type"] == "live.stats"] == []
        assert (await _only_stats_after(ws, 2_000_000.0))[-1]["at"] == (
            services.selectors.now_iso(2_000_000.0)
        )
