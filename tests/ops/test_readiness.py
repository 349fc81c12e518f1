"""/readyz follows the Celery worker; a SIGKILLed worker's live work resumes on a new one."""

import asyncio
import time
from datetime import datetime

import httpx
import pytest
from django.core.management import call_command

from switchboard_client import Connection
from tests.conftest import token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Bounds of each wait below (a worker starts in a few seconds; stats come every second).
READY_TIMEOUT_SECONDS = 15
STATS_TIMEOUT_SECONDS = 20


def _readyz_until(url: str, status: int) -> dict:
    """Poll /readyz until it answers ``status``; return its body."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        res = httpx.get(url + "/readyz", timeout=10)
        if res.status_code == status:
            return res.json()
        assert time.monotonic() < deadline, (res.status_code, res.text)
        time.sleep(0.3)


def _at(stats: dict) -> float:
    return datetime.fromisoformat(stats["at"]).timestamp()


async def _stats_after(ws, after: float) -> dict:
    """The next ``live.stats`` event computed after ``after`` (a Unix time)."""
    async with asyncio.timeout(STATS_TIMEOUT_SECONDS):
        while True:
            frame = await ws.recv()
            if frame["type"] == "live.stats" and _at(frame["data"]) > after:
                return frame["data"]


def test_a_sigkilled_worker_is_not_ready_and_its_live_work_resumes_on_a_new_one(
    servers, celery_procs, make_user, settings
):
    """Live stats are computed every second and pushed to a subscribed socket; the worker is
    SIGKILLed (children too, no goodbye to the broker): /readyz says so; a new worker picks
    the work up, with no restart of the web process, beat or the socket."""
    settings.LIVE = {**settings.LIVE, "STATS_SECONDS": 1}
    call_command("bootstrap")  # installs the schedules (stats every second) as `make run` does
    (server,) = servers(1)
    token = token_for(make_user())
    worker = celery_procs.worker(LIVE_STATS_SECONDS="1")
    beat = celery_procs.beat(LIVE_STATS_SECONDS="1")
    assert _readyz_until(server.url, 200)["status"] == "ok"

    async def scenario() -> None:
        async with await Connection.open(server.ws_url, token=token) as ws:
            assert ws.hello_frame["type"] == "hello"
            await ws.send({"type": "live.subscribe", "ref": "s", "data": {}})
            await _stats_after(ws, time.time())  # flowing

            await asyncio.to_thread(worker.kill)
            killed_at = time.time()
            body = await asyncio.to_thread(_readyz_until, server.url, 503)
            assert body["failed"] == ["celery_worker"], body
            assert "no Celery worker" in body["checks"]["celery_worker"]["error"]

            await asyncio.to_thread(celery_procs.worker, LIVE_STATS_SECONDS="1")
            # Computed by the new worker, reaching the socket opened before the kill.
            first = await _stats_after(ws, killed_at)
            second = await _stats_after(ws, _at(first))
            assert second["users_online"] >= 1  # this socket
            assert (await asyncio.to_thread(_readyz_until, server.url, 200))["status"] == "ok"

    asyncio.run(scenario())
    assert server.running() and beat.running()  # neither was restarted
