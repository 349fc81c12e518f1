"""The live feed end to end: beat -> worker -> channel layer -> a browser's WebSocket."""

import asyncio

import httpx
import pytest
from django.core.management import call_command

from conversations.services import conversation_direct_get_or_create, message_send
from switchboard_client import Connection
from tests.conftest import token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


async def _frames_until(ws, predicate, timeout: float) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.recv()
            if predicate(frame):
                return frame


def test_scheduled_stats_reach_a_subscribed_websocket(servers, celery_procs, make_user, settings):
    settings.LIVE = {**settings.LIVE, "STATS_SECONDS": 1}
    ann, bob = make_user(), make_user()
    conv, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    message_send(sender_id=ann.pk, conversation_id=conv.pk, body="hello", client_id="c1")
    call_command("bootstrap")  # installs the schedules (stats every second) as `make run` does
    (server,) = servers(1)
    token = token_for(ann)

    async def scenario() -> list[dict]:
        async with await Connection.open(server.ws_url, token=token) as ws:  # after its hello
            reply = await ws.reply("live.subscribe", timeout=10)
            assert reply["ok"] is True
            # Worker and beat start only now: every stats event comes from them.
            await asyncio.to_thread(celery_procs.worker, LIVE_STATS_SECONDS="1")
            await asyncio.to_thread(celery_procs.beat, LIVE_STATS_SECONDS="1")
            events = []
            while len(events) < 2:  # twice: a worker process publishes more than once
                events.append(await _frames_until(ws, lambda f: f["type"] == "live.stats", 60))
            return events

    first, second = asyncio.run(scenario())
    stats = first["data"]
    assert stats["messages_last_minute"] == 1
    assert stats["users_online"] >= 1  # ann's socket
    assert stats["waiting_in_pool"] >= 0  # the pool is shared by the run's tests
    assert stats["matches_last_minute"] == 0
    assert isinstance(stats["trending"], list)
    assert second["data"]["at"] > stats["at"]
    # The worker's task counters reach the server's /metrics (one directory per host).
    metrics = httpx.get(server.url + "/metrics", timeout=10).text
    runs = [
        line
        for line in metrics.splitlines()
        if line.startswith('switchboard_task_runs_total{task="live.stats_push"}')
    ]
    assert runs and float(runs[0].split()[-1]) >= 2
