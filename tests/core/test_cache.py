"""``core.cache.cached``: cache-aside with stampede protection; sessions outlive the cache."""

import threading
import time

import pytest
from django.conf import settings
from django.contrib.sessions.backends.cached_db import KEY_PREFIX
from django.core.cache import cache
from django.test import Client

from core.cache import cached
from core.redis import bus, key


def _unique(name: str) -> str:
    return f"{name}:{time.monotonic_ns()}"


def test_concurrent_misses_cause_one_computation():
    counter = key("test", "computations", time.monotonic_ns())
    started = threading.Event()

    @cached(key=lambda *, n: _key, ttl=60, wait=30)
    def slow(*, n: int) -> int:
        started.set()
        bus().incr(counter)
        time.sleep(0.5)  # long enough for every other caller to miss meanwhile
        return n * 2

    _key = _unique("stampede")
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(slow(n=21))) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert started.is_set()
    assert results == [42] * 12
    assert int(bus().get(counter)) == 1


def test_a_stale_value_is_served_while_one_caller_recomputes(settings):
    computations = []
    release = threading.Event()

    @cached(key=lambda: _key, ttl=lambda: ttl, wait=5)
    def value() -> str:
        computations.append(1)
        if len(computations) > 1:
            release.wait(30)  # the recomputation is slow
        return f"v{len(computations)}"

    _key = _unique("stale")
    ttl = 0.2
    assert value() == "v1"
    time.sleep(0.3)  # now stale, still within CACHE_STALE_GRACE
    recomputing = threading.Thread(target=value)
    recomputing.start()
    while len(computations) < 2:
        time.sleep(0.01)
    assert value() == "v1"  # the previous value, at once, while the other recomputes
    release.set()
    recomputing.join(30)
    assert value() == "v2"
    assert len(computations) == 2


def test_invalidate_forgets_the_value():
    calls = []

    @cached(key=lambda *, n: f"{_key}:{n}", ttl=60)
    def square(*, n: int) -> int:
        calls.append(n)
        return n * n + len(calls)

    _key = _unique("inval")
    assert square(n=3) == 10
    assert square(n=3) == 10
    square.invalidate(n=3)
    assert square(n=3) == 11
    assert calls == [3, 3]


def test_none_is_not_cached_by_default():
    calls = []

    @cached(key=lambda: _key, ttl=60)
    def nothing():
        calls.append(1)

    _key = _unique("none")
    nothing()
    nothing()
    assert len(calls) == 2


def _flush_this_runs_cache() -> int:
    """Delete every key of this test run in the cache Redis (never FLUSHDB: it is shared)."""
    client = cache.client.get_client(write=True)
    names = list(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}:*", count=1000))
    if names:
        client.delete(*names)
    return len(names)


@pytest.mark.django_db
def test_sessions_survive_a_cache_flush(make_user):
    user = make_user(password="correct-horse-battery-9")
    client = Client()
    client.force_login(user)
    session_key = KEY_PREFIX + client.cookies["sessionid"].value
    assert client.get("/api/auth/session").json()["user_id"] == user.pk
    assert cache.get(session_key) is not None  # cached_db: the session is in the cache
    assert _flush_this_runs_cache() >= 1
    assert cache.get(session_key) is None
    res = client.get("/api/auth/session")
    assert res.status_code == 200
    assert res.json()["user_id"] == user.pk
