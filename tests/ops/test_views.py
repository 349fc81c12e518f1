"""/healthz and /readyz, including a Redis that stops; /ops/stats."""

import pytest
from django.test import Client

from switchboard.embedded_redis import redis_server
from tests.conftest import api_as

pytestmark = pytest.mark.django_db


def test_healthz_answers():
    assert Client().get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_each_check_with_timing(worker_and_beat):
    res = Client().get("/readyz")
    assert res.status_code == 200, res.json()
    checks = res.json()["checks"]
    assert set(checks) == {
        "database",
        "redis_bus",
        "redis_cache",
        "channel_layer",
        "celery_worker",
        "celery_beat",
    }
    assert all(c["ok"] and c["ms"] >= 0 for c in checks.values())


def test_readyz_is_503_when_beat_stopped_ticking(worker_and_beat, settings):
    settings.OPS = {**settings.OPS, "READY_BEAT_MAX_AGE_SECONDS": 0}
    res = Client().get("/readyz")
    assert res.status_code == 503
    assert res.json()["failed"] == ["celery_beat"]


@pytest.fixture
def own_redis():
    """A redis-server of this test's own on a spare port (the shared one is never stopped)."""
    with redis_server() as (port, proc):
        yield proc, port


def test_readyz_is_503_naming_a_stopped_bus_redis(
    worker_and_beat, own_redis, settings, monkeypatch
):
    import core.redis as sb_redis

    proc, port = own_redis
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    monkeypatch.setattr(sb_redis, "_sync_client", None)
    # This bus has never seen our beat's heartbeat: only the bus check matters here.
    before = Client().get("/readyz").json()
    assert before["checks"]["redis_bus"]["ok"] is True
    assert before["failed"] == ["celery_beat"]
    proc.kill()
    proc.wait()
    res = Client().get("/readyz")
    assert res.status_code == 503
    assert res.json()["failed"] == ["redis_bus", "celery_beat"]
    assert res.json()["checks"]["redis_bus"]["ok"] is False
    monkeypatch.setattr(sb_redis, "_sync_client", None)


def test_readyz_shows_its_errors_only_to_staff_and_loopback(make_user, settings, monkeypatch):
    import core.redis as sb_redis
    from switchboard.embedded_redis import free_port

    port = free_port()  # nothing listens there: the bus check fails, naming host and port
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    monkeypatch.setattr(sb_redis, "_sync_client", None)
    try:
        outsider = Client(REMOTE_ADDR="203.0.113.7")
        res = outsider.get("/readyz")
        assert res.status_code == 503
        assert res.json() == {"status": "unavailable"}
        assert str(port) not in res.content.decode()
        local = Client().get("/readyz")  # the test client comes from 127.0.0.1
        assert local.status_code == 503 and "redis_bus" in local.json()["failed"]
        assert str(port) in local.json()["checks"]["redis_bus"]["error"]
        staff = make_user()
        staff.is_staff = True
        staff.save()
        outsider.force_login(staff)
        assert "redis_bus" in outsider.get("/readyz").json()["failed"]
        outsider.force_login(make_user())
        assert outsider.get("/readyz").json() == {"status": "unavailable"}
    finally:
        monkeypatch.setattr(sb_redis, "_sync_client", None)


def test_ops_stats_is_for_staff_only(make_user):
    assert Client().get("/ops/stats").status_code in (401, 403)
    assert api_as(make_user()).get("/ops/stats").status_code == 403


def test_ops_stats_reports_cache_bus_sockets_and_tasks(make_user, worker_and_beat):
    staff = make_user()
    staff.is_staff = True
    staff.save()
    res = api_as(staff).get("/ops/stats")
    assert res.status_code == 200
    body = res.json()
    for role in ("cache", "bus"):
        assert {"hit_rate", "used_memory", "connected_clients", "pool"} <= set(body[role])
        assert body[role]["pool"]["max"] >= 1
    assert set(body["websockets"]) == {"total", "by_process"}
    assert body["beat_age_seconds"] is not None


def test_readyz_web_scope_is_what_this_process_needs_to_serve(settings):
    """Beat counts as stale (a limit of 0 s; a worker may or may not run, depending on the
    module's other tests): the whole system is not ready, this process is."""
    settings.OPS = {**settings.OPS, "READY_BEAT_MAX_AGE_SECONDS": 0}
    whole = Client().get("/readyz")
    assert whole.status_code == 503
    assert "celery_beat" in whole.json()["failed"]
    res = Client().get("/readyz?scope=web")
    assert res.status_code == 200, res.json()
    assert res.json()["status"] == "ok"
    assert set(res.json()["checks"]) == {"database", "redis_bus", "redis_cache", "channel_layer"}


def test_readyz_refuses_an_unknown_scope():
    res = Client().get("/readyz?scope=everything")
    assert res.status_code == 400
    assert res.json()["code"] == "invalid" and "scope" in res.json()["fields"]
