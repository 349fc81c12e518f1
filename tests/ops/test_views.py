"""/healthz and /readyz, including a Redis that stops."""

import subprocess
import time

import pytest
import redis
from django.test import Client

from tests.conftest import free_port

pytestmark = pytest.mark.django_db


def test_healthz_answers():
    assert Client().get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_each_check_with_timing():
    res = Client().get("/readyz")
    assert res.status_code == 200
    checks = res.json()["checks"]
    assert {"database", "redis_bus", "redis_cache"} <= set(checks)
    assert all(c["ok"] and c["ms"] >= 0 for c in checks.values())


@pytest.fixture
def own_redis():
    """A redis-server of this test's own on a spare port (the shared one is never stopped)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(50):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    yield proc, port
    proc.kill()
    proc.wait()


def test_readyz_is_503_naming_a_stopped_bus_redis(own_redis, settings, monkeypatch):
    import switchboard.redis as sb_redis

    proc, port = own_redis
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    monkeypatch.setattr(sb_redis, "_sync_client", None)
    assert Client().get("/readyz").status_code == 200
    proc.kill()
    proc.wait()
    res = Client().get("/readyz")
    assert res.status_code == 503
    assert res.json()["failed"] == ["redis_bus"]
    assert res.json()["checks"]["redis_bus"]["ok"] is False
    monkeypatch.setattr(sb_redis, "_sync_client", None)
