"""A cache Redis outage logs nobody out: the cache is disposable (docs/subsystems/caching.md).

A server process whose ``CACHE_URL`` is a private Redis; the Redis is SIGKILLed, then
started again on its port. The shared Redis and PostgreSQL are never touched.
"""

import asyncio
import time

import httpx
import pytest
import redis

from switchboard.embedded_redis import RedisServer
from switchboard_client import Connection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PASSWORD = "correct-horse-battery-9"
RECOVERY_TIMEOUT_SECONDS = 20


@pytest.fixture
def cache_redis():
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


def _session_keys(server: RedisServer) -> list[bytes]:
    client = redis.Redis(port=server.port)
    try:
        return list(client.scan_iter(match="*cached_db*", count=1000))
    finally:
        client.close()


def _csrf(http: httpx.Client) -> dict[str, str]:
    return {"X-CSRFToken": http.cookies["csrftoken"]}


def _browser_works(http: httpx.Client, ws_url: str, origin: str, user_id: int, n: int) -> None:
    """A session page, browser REST reads and a write, and a cookie WebSocket all answer."""
    for _ in range(n):
        page = http.get("/live/")  # login_required: a lost session would redirect to log-in
        assert page.status_code == 200, page.text[:300]
        me = http.get("/api/auth/session")
        assert me.status_code == 200 and me.json()["user_id"] == user_id, me.text[:300]
        assert http.get("/api/profile").status_code == 200
    # A write: the profile's cached public copy cannot be invalidated, the write succeeds.
    res = http.patch("/api/profile", json={"display_name": "Still here"}, headers=_csrf(http))
    assert res.status_code == 200, res.text[:300]

    async def cookie_socket() -> dict:
        headers = {"Cookie": f"sessionid={http.cookies['sessionid']}", "Origin": origin}
        async with await Connection.open(ws_url, headers=headers, open_timeout=10) as ws:
            return ws.hello_frame

    hello = asyncio.run(cookie_socket())
    assert hello["type"] == "hello", hello
    assert hello["data"]["user_id"] == user_id
    assert hello["data"]["auth"] == "session"


def test_a_cache_outage_keeps_browsers_signed_in_and_readyz_degraded(
    worker_and_beat, servers, make_user, cache_redis
):
    (server,) = servers(1, CACHE_URL=cache_redis.url(), CACHE_ERROR_LOG_SECONDS="600")
    user = make_user(password=PASSWORD)
    with httpx.Client(base_url=server.url, timeout=15) as http:
        http.get("/api/auth/session")  # the CSRF cookie
        res = http.post(
            "/api/auth/session",
            json={"username": user.username, "password": PASSWORD},
            headers=_csrf(http),
        )
        assert res.status_code == 204, res.text
        _browser_works(http, server.ws_url, server.url, user.pk, n=1)
        assert _session_keys(cache_redis), "the session should be cached in the private Redis"
        assert http.get("/readyz").json()["status"] == "ok"

        cache_redis.kill()
        log_from = server.log.stat().st_size
        _browser_works(http, server.ws_url, server.url, user.pk, n=10)
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "degraded"
        assert body["degraded"] == ["redis_cache"]
        assert body["checks"]["redis_cache"]["ok"] is False
        assert "failed" not in body
        assert all(c["ok"] for name, c in body["checks"].items() if name != "redis_cache")

        # About 40 cache calls failed; the log has a line or two, not a traceback each.
        outage_log = server.log.read_text(errors="replace")[log_from:]
        assert "Traceback" not in outage_log
        assert "level=ERROR" not in outage_log
        cache_lines = [line for line in outage_log.splitlines() if "logger=core.cache" in line]
        assert 1 <= len(cache_lines) <= 3, cache_lines

        cache_redis.start()  # back, empty, on the same port
        deadline = time.monotonic() + RECOVERY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            ready = http.get("/readyz").json()
            assert http.get("/api/auth/session").json()["user_id"] == user.pk
            if ready["status"] == "ok" and _session_keys(cache_redis):
                break
            time.sleep(0.2)
        assert ready["status"] == "ok", ready
        assert _session_keys(cache_redis), "sessions are cached again after the recovery"
        _browser_works(http, server.ws_url, server.url, user.pk, n=1)
