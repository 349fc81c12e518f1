"""A Sentinel failover of the bus primary under load (issue 16).

Three sentinels watch a primary and its replica; two web processes, a Celery worker and beat
use them through ``REDIS_URL=sentinel://...`` (channel layer, broker, presence, cache ...).
A sender and a reader stream messages across the two processes (``tests.message_stream``)
while the primary is SIGKILLed. Measured: the time until the bus answers again (a request
that reads it) and until messages are pushed live again; asserted: under
``RECOVERY_TARGET_SECONDS``, every acknowledged message stored once and read once in order,
a send retried with the same client id stored once, and the worker and beat reconnected (a
task enqueued after the failover runs; beat ticks and its tasks run after it). The figures
go to ``test-artifacts/sentinel-failover.json`` (docs/deployment.md quotes them).
"""

import asyncio
import json
import socket
import time

import pytest
from celery import Celery
from channels.db import database_sync_to_async
from django.conf import settings

from conversations.models import Message
from conversations.services import conversation_direct_get_or_create
from core import redis_urls
from core.periodic import runs_key, skips_key
from core.redis import key
from ops.schedules import schedules_install
from tests.celery_processes import CeleryProcess
from tests.cluster.redis_cluster import sentinel_set
from tests.conftest import ARTIFACTS, accept_all, process_env, token_for
from tests.message_stream import MessageStream, assert_stored_once

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RECOVERY_TARGET_SECONDS = 10.0
STATS_SECONDS = 2  # live.stats_push, scheduled by beat: its runs show beat and worker alive
ENQUEUED_TASK = "live.trending_rollover"  # daily on its schedule: only the test enqueues it


@pytest.fixture
def bus_sentinel(tmp_path):
    with sentinel_set(tmp_path) as group:
        yield group


@pytest.fixture
def celery_on(transactional_db):
    """``celery_on(kind, env)``: a worker or beat on that environment, spawned (not waited
    for); all stopped at the end."""
    started: list[CeleryProcess] = []

    def spawn(kind: str, env: dict) -> CeleryProcess:
        proc = CeleryProcess(kind, env)
        started.append(proc)
        proc.spawn()
        return proc

    yield spawn
    for proc in started:
        proc.terminate()
    for proc in started:
        proc.stop()


def probe_app(url: str) -> Celery:
    """A Celery app of the test process on the Sentinel broker (``settings`` speak to the
    shared Redis): to ping the worker and enqueue a task."""
    broker, options = redis_urls.celery_broker(redis_urls.parse(url)[0])
    app = Celery("failover-probe", broker=broker, set_as_current=False)
    app.conf.broker_transport_options = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, **options}
    app.conf.broker_connection_retry_on_startup = True
    return app


def _pair(make_user):
    ann, bob = make_user(), make_user()
    conv, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    accept_all(conv)
    return token_for(ann), token_for(bob), bob.pk, conv.pk


def stored(cid: int) -> list[tuple[str, int]]:
    return list(Message.objects.filter(conversation_id=cid).values_list("client_id", "seq"))


def task_count(master, name: str) -> int:
    """Runs plus skips of a periodic task recorded on the bus (core.periodic): it ran."""
    return int(master.hget(runs_key(), name) or 0) + int(master.hget(skips_key(), name) or 0)


async def wait_for(check, what: str, timeout: float) -> float:
    """Poll ``check()`` (in a thread) until true; return when (monotonic)."""
    deadline = time.monotonic() + timeout
    while True:
        if await asyncio.to_thread(check):
            return time.monotonic()
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_a_primary_sigkill_under_load_fails_over_losing_nothing(
    bus_sentinel, servers, celery_on, make_user, settings
):
    url = bus_sentinel.url()
    extra = {"REDIS_URL": url, "DB_POOL_MAX_SIZE": "2", "LIVE_STATS_SECONDS": str(STATS_SECONDS)}
    settings.LIVE = {**settings.LIVE, "STATS_SECONDS": STATS_SECONDS}
    await database_sync_to_async(schedules_install)()
    env = process_env(**extra)
    worker, beat = celery_on("worker", env), celery_on("beat", env)
    a, b = servers(2, **extra)
    app = probe_app(url)
    node = f"{worker.name}@{socket.gethostname()}"
    worker.wait_until(lambda: bool(app.control.ping(destination=[node], timeout=0.5)))
    master = bus_sentinel.master()
    tick = key("ops", "beat", "tick")
    beat.wait_until(lambda: master.get(tick) is not None)

    ann_token, bob_token, bob_id, cid = await database_sync_to_async(_pair)(make_user)
    stream, probe = await MessageStream.started_with_probe(b, a, (ann_token, bob_token), cid)
    figures: dict = {}
    try:
        await stream.wait_received(20, timeout=30)
        acked_at_kill = len(stream.acked)
        killed_at, killed_wall = time.monotonic(), time.time()
        bus_sentinel.primary.kill()  # SIGKILL: no goodbye to clients or sentinels

        # Back: a request that reads the bus answers ok (presence lives there) ...
        while True:
            reply = await probe.request("presence.query", {"user_ids": [bob_id]}, timeout=10)
            if reply["ok"]:
                break
            assert reply["error"]["code"] == "unavailable", reply
            assert time.monotonic() - killed_at < 30, "the bus never came back"
            await asyncio.sleep(0.1)
        bus_back = time.monotonic() - killed_at
        # ... and a message sent after the kill is pushed live to the other process again
        # (published on the new primary, heard by the reader's subscription there).
        await stream.wait_received(acked_at_kill + 2, timeout=30)
        live_back = time.monotonic() - killed_at
        figures.update(bus_back_seconds=round(bus_back, 2), live_back_seconds=round(live_back, 2))
        assert bus_sentinel.master_port() == bus_sentinel.replica.port  # the replica took over
        assert max(bus_back, live_back) < RECOVERY_TARGET_SECONDS, figures

        await stream.wait_acked(len(stream.acked) + 20, timeout=30)
        await stream.stop_sending()
        await stream.wait_received(len(stream.acked), timeout=30)
        stream.assert_exactly_once()
        figures.update(
            acked=len(stream.acked),
            slowest_reply_seconds=round(stream.slowest_reply, 2),
            errors=dict(stream.errors),
            sender_reconnects=stream.sender_reconnects,
            reader_reconnects=stream.reader_reconnects,
        )
        # A send retried after the failover with an acknowledged client id: the same message.
        again = {"conversation_id": cid, "body": "body of m3", "client_id": "m3"}
        reply = await probe.request("message.send", again, timeout=10)
        assert reply["ok"] and reply["data"]["message"]["seq"] == stream.acked["m3"], reply
    finally:
        await stream.close()
        await probe.close()
    assert_stored_once(await database_sync_to_async(stored)(cid), stream.acked)

    # The worker and beat reconnected: a task enqueued now runs; beat ticks after the
    # failover and the worker keeps running what beat sends.
    recovered_wall = killed_wall + figures["bus_back_seconds"]
    master = bus_sentinel.master()
    stats_before = await asyncio.to_thread(task_count, master, "live.stats_push")
    await asyncio.to_thread(app.send_task, ENQUEUED_TASK)
    ran = await wait_for(
        lambda: task_count(master, ENQUEUED_TASK) >= 1, "the enqueued task never ran", 30
    )
    figures["enqueued_task_ran_after_seconds"] = round(ran - killed_at, 2)
    await wait_for(
        lambda: float(master.get(tick) or 0) > recovered_wall, "beat never ticked again", 15
    )
    await wait_for(
        lambda: task_count(master, "live.stats_push") >= stats_before + 2,
        "beat's tasks stopped running",
        20,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "sentinel-failover.json").write_text(json.dumps(figures, indent=2))
    print("sentinel failover:", figures)
