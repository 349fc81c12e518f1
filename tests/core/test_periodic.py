"""``core.periodic``: once per period whatever beat and retries do; transient errors retried."""

import itertools
import time

import pytest
import redis

from core import periodic as periodic_module
from core.periodic import history_key, periodic, runs_key, skips_key
from core.redis import bus, key
from ops.schedules import schedules_install

pytestmark = pytest.mark.django_db(transaction=True)

STATS_PERIOD = 2


def _run_times(name: str) -> list[float]:
    return sorted(float(t) for t in bus().lrange(history_key(name), 0, -1))


@pytest.mark.slow
def test_a_second_beat_does_not_double_run_a_task(celery_procs, settings):
    settings.LIVE = {**settings.LIVE, "STATS_SECONDS": STATS_PERIOD}
    schedules_install()
    # The run's Redis keys outlive a test: count only what happens from here on.
    started = time.time()
    skipped_before = int(bus().hget(skips_key(), "live.stats_push") or 0)
    celery_procs.worker(LIVE_STATS_SECONDS=str(STATS_PERIOD))
    celery_procs.beat(LIVE_STATS_SECONDS=str(STATS_PERIOD))
    celery_procs.beat(LIVE_STATS_SECONDS=str(STATS_PERIOD))
    deadline = time.monotonic() + 90
    # Both beats send every period; wait until the duplicates have been seen and turned away.
    while time.monotonic() < deadline:
        runs = [t for t in _run_times("live.stats_push") if t >= started]
        skipped = int(bus().hget(skips_key(), "live.stats_push") or 0) - skipped_before
        if len(runs) >= 4 and skipped >= 3:
            break
        time.sleep(0.5)
    assert skipped >= 3, "the second beat never sent a duplicate"
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    # Two runs of one period would be close together; every run is a period's only one.
    assert min(gaps) >= STATS_PERIOD * 0.75, gaps


_calls: list[str] = []


@periodic(name="tests.live.flaky_periodic", period=lambda: 60.0, retry_backoff_max=1)
def flaky() -> str:
    _calls.append("call")
    if len(_calls) == 1:
        raise redis.exceptions.ConnectionError("the bus blinked")
    return "done"


@periodic(name="tests.live.once_periodic", period=lambda: 60.0)
def once() -> str:
    return "ran"


def test_a_transient_error_is_retried_and_the_retry_keeps_the_claim():
    _calls.clear()
    result = flaky.apply(task_id="run-1")  # eager: Celery runs the retry at once
    assert result.get() == "done"
    assert _calls == ["call", "call"]
    assert int(bus().hget(runs_key(), "tests.live.flaky_periodic")) == 2


def test_a_duplicate_of_a_run_in_the_same_period_is_skipped():
    assert once.apply(task_id="first").get() == "ran"
    assert once.apply(task_id="duplicate").get() is None
    assert int(bus().hget(skips_key(), "tests.live.once_periodic")) == 1


def test_a_bug_is_not_retried():
    @periodic(name="tests.live.buggy_periodic", period=lambda: 60.0)
    def buggy() -> None:
        _calls.append("bug")
        raise ValueError("a bug")

    _calls.clear()
    result = buggy.apply(task_id="bug-1")
    assert result.failed()
    assert _calls == ["bug"]


_inner: list[object] = []


@periodic(name="tests.live.long_periodic", period=lambda: 0.01)
def long_run() -> str:
    time.sleep(periodic_module.RUN_LEASE_SECONDS * 2.5)  # past the lease: renewed meanwhile
    _inner.append(bus().pttl(key("lock", "run", "tests.live.long_periodic")))
    _inner.append(long_run())  # a second run meanwhile is turned away
    return "ran"


def test_the_run_lock_is_a_lease_renewed_while_the_body_runs(monkeypatch):
    """A worker killed mid-run stops renewing: its lock lapses after the lease, not after
    max_runtime (tests/ops/test_readiness.py kills one); a live run keeps it."""
    monkeypatch.setattr(periodic_module, "RUN_LEASE_SECONDS", 0.6)
    _inner.clear()
    assert long_run() == "ran"
    ttl_ms, second = _inner
    assert 0 < ttl_ms <= 600  # still held, on the lease's terms
    assert second is None
    assert not bus().exists(key("lock", "run", "tests.live.long_periodic"))  # released
