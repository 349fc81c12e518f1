"""``@periodic``: a Celery task that Beat may send twice and workers may retry, run once.

Two locks guard every run (``core.locks``, redis-py's ``Lock``, on the bus Redis):

- the **period claim** ``lock:period:<task>``: taken with the task id as its token for
  ``CLAIM_FRACTION`` of the task's period and never released, only expiring. A second beat
  (or a duplicated message) sending the same run within the period finds it taken and skips;
  a retry of the same run carries the same task id, so it still owns the claim and goes on;
- the **run lock** ``lock:run:<task>``: held while the body runs, released by its owner, so
  two runs never overlap even when one outlasts its period. It is a lease of
  ``RUN_LEASE_SECONDS``, renewed while the body runs (up to ``max_runtime``): the lock of a
  worker killed mid-run (SIGKILL, out of memory) lapses within seconds, where a lock for the
  whole ``max_runtime`` kept the task from running anywhere for a minute.

Transient failures (Redis or database connection errors) are retried with exponential
backoff and jitter; every failure is logged with the task name and id (``ops.celery``
counts runs, skips and failures for ``/metrics``). Each run leaves a trace on the bus for
``GET /ops/stats``: counts per task and the times of the last runs.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from celery import shared_task
from django import db as django_db
from redis.exceptions import LockError

from core.redis import bus, key

from .locks import Lock

logger = logging.getLogger(__name__)

# A claim lasts this fraction of the period: long enough to swallow a second beat's copy of
# the same run, short enough that the next legitimate run (one period later) is never lost.
CLAIM_FRACTION = 0.8
# The run lock's lease, renewed every third of it while the body runs.
RUN_LEASE_SECONDS = 6.0
# Run timestamps kept per task (GET /ops/stats, tests).
HISTORY_LENGTH = 50

# Errors worth retrying: the dependency may be back in a moment. Anything else is a bug and
# fails at once (logged, counted).
TRANSIENT_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    django_db.OperationalError,
    django_db.InterfaceError,
)


def runs_key() -> str:
    return key("tasks", "runs")


def skips_key() -> str:
    return key("tasks", "skips")


def history_key(task_name: str) -> str:
    return key("tasks", "history", task_name)


def _record(task_name: str, *, ran: bool, now: float) -> None:
    pipe = bus(runs_key()).pipeline(transaction=False)  # one subsystem: tasks
    if ran:
        pipe.hincrby(runs_key(), task_name, 1)
        pipe.lpush(history_key(task_name), repr(now))
        pipe.ltrim(history_key(task_name), 0, HISTORY_LENGTH - 1)
    else:
        pipe.hincrby(skips_key(), task_name, 1)
    pipe.execute()


class _LeaseRenewal:
    """Renew ``lock`` (every third of its lease) from a thread until ``stop`` or ``until``."""

    def __init__(self, lock: Lock, *, until: float) -> None:
        self._lock = lock
        self._until = until
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="run-lock-renewal", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stopped.wait(RUN_LEASE_SECONDS / 3) and time.monotonic() < self._until:
            try:
                self._lock.reacquire()
            except LockError:  # lapsed and taken by another run: nothing left to renew
                return
            except redis.RedisError:  # the bus away for a moment: try again at the next turn
                continue

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def periodic(
    *,
    name: str,
    period: Callable[[], float],
    max_runtime: float = 60.0,
    max_retries: int = 3,
    retry_backoff_max: int = 60,
) -> Callable[[Callable[..., Any]], Any]:
    """Make ``func(**kwargs)`` a Celery task named ``name``, run at most once per period.

    ``period`` returns the schedule's period in seconds (read when the task runs, so it
    follows the settings the schedule was built from); ``max_runtime`` bounds the run lock.
    """

    def decorate(func: Callable[..., Any]) -> Any:
        # Celery ships no types: the task it makes is ``Any`` to mypy.
        @shared_task(  # type: ignore[untyped-decorator]
            name=name,
            bind=True,
            ignore_result=True,
            autoretry_for=TRANSIENT_ERRORS,
            retry_backoff=True,
            retry_backoff_max=retry_backoff_max,
            retry_jitter=True,
            max_retries=max_retries,
            # A run that outlives its lock could overlap the next one: stop it first.
            soft_time_limit=max_runtime,
        )
        def task(self: Any, **kwargs: Any) -> Any:
            task_id = self.request.id or "local"
            claim = Lock(key("lock", "period", name), ttl=period() * CLAIM_FRACTION)
            if not claim.acquire(token=task_id) and not claim.held_by(task_id):
                logger.info("task=%s id=%s skipped: this period already ran", name, task_id)
                _record(name, ran=False, now=time.time())
                return None
            run_lock = Lock(key("lock", "run", name), ttl=RUN_LEASE_SECONDS)
            if not run_lock.acquire(token=task_id):
                logger.info("task=%s id=%s skipped: a previous run is still going", name, task_id)
                _record(name, ran=False, now=time.time())
                return None
            renewal = _LeaseRenewal(run_lock, until=time.monotonic() + max_runtime + 5)
            try:
                _record(name, ran=True, now=time.time())
                return func(**kwargs)
            finally:
                renewal.stop()
                if not run_lock.release_if_owned():
                    logger.warning("task=%s id=%s outlived its run lock", name, task_id)

        task.body = func
        return task

    return decorate
