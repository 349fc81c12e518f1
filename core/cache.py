"""``@cached``: cache-aside on the cache Redis, with stampede protection.

A value is stored with the time it stops being fresh, and kept ``TTLS["CACHE_STALE_GRACE"]``
longer. A caller that finds it

- **fresh**: returns it;
- **stale**: takes the value's recompute lock (``SET NX PX`` in the cache Redis) and
  recomputes, or, if another caller holds the lock, returns the stale value at once;
- **missing**: takes the lock and computes, or waits (polling) up to ``wait`` seconds for
  the lock holder's value; past that it computes for itself without storing.

So N concurrent misses cost one computation. Every write of a value happens under its lock,
and ``invalidate`` deletes under the same lock: a reader that read the database before a
change committed cannot store its old copy after the change's invalidation (the classic
cache-aside race). When the cache Redis fails, callers compute directly: the cache is an
optimisation, never a dependency (sessions likewise live in the database: ``cached_db``).
"""

import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, ParamSpec, TypeVar, cast

import redis
from django.conf import settings
from django.core.cache import cache

from .locks import Lock
from .metrics import CACHE_REQUESTS

logger = logging.getLogger(__name__)

# How often a caller waiting for another's computation looks for the value.
WAIT_POLL_SECONDS = 0.02
_CACHE_ERRORS = (redis.exceptions.RedisError, OSError)

P = ParamSpec("P")
R = TypeVar("R")


def _client() -> redis.Redis:
    # django-redis' backend (settings.CACHES); django-stubs types ``cache`` as the base class.
    client: redis.Redis = cast(Any, cache).client.get_client(write=True)
    return client


def _lock(cache_key: str) -> Lock:
    return Lock(
        cache.make_key(f"lock:{cache_key}"),
        ttl=settings.TTLS["CACHE_RECOMPUTE_LOCK"],
        client=_client(),
    )


def _seconds(value: float | Callable[[], float]) -> float:
    return value() if callable(value) else value


class Cached(Generic[P, R]):
    """A function wrapped by ``@cached``; call it like the function."""

    def __init__(
        self,
        func: Callable[P, R],
        *,
        key: Callable[..., str],
        ttl: float | Callable[[], float],
        wait: float,
        cache_none: bool,
    ) -> None:
        functools.update_wrapper(self, func)
        self.func, self.key_for, self.ttl, self.wait = func, key, ttl, wait
        self.cache_none = cache_none
        self.name = func.__qualname__

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        cache_key = self.key_for(*args, **kwargs)
        try:
            return self._get(cache_key, args, kwargs)
        except _CACHE_ERRORS:
            logger.warning("cache=%s unavailable: computing directly", self.name, exc_info=True)
            CACHE_REQUESTS.labels(self.name, "error").inc()
            return self.func(*args, **kwargs)

    def _count(self, result: str) -> None:
        CACHE_REQUESTS.labels(self.name, result).inc()

    def _get(self, cache_key: str, args: Any, kwargs: Any) -> R:
        # (fresh until, value), as ``_store`` and ``warm`` write it.
        entry: tuple[float, R] | None = cache.get(cache_key)
        if entry is not None and entry[0] > time.time():
            self._count("hit")
            return entry[1]
        lock = _lock(cache_key)
        if lock.acquire():
            try:
                # Someone may have stored a fresh value between our read and our lock.
                latest: tuple[float, R] | None = cache.get(cache_key)
                if latest is not None and latest[0] > time.time():
                    self._count("hit")
                    return latest[1]
                self._count("miss" if entry is None else "refresh")
                value = self.func(*args, **kwargs)
                self._store(cache_key, value, lock)
                return value
            finally:
                lock.release_if_owned()
        if entry is not None:
            self._count("stale")  # someone else is recomputing: the previous value will do
            return entry[1]
        deadline = time.monotonic() + self.wait
        while time.monotonic() < deadline:
            time.sleep(WAIT_POLL_SECONDS)
            entry = cache.get(cache_key)
            if entry is not None:
                self._count("waited")
                return entry[1]
        self._count("gave_up")
        return self.func(*args, **kwargs)  # not stored: only the lock holder writes

    def _store(self, cache_key: str, value: R, lock: Lock) -> None:
        if value is None and not self.cache_none:
            return
        if not lock.owned():
            return  # our lock expired mid-computation: an invalidation may have run since
        ttl = _seconds(self.ttl)
        grace = settings.TTLS["CACHE_STALE_GRACE"]
        cache.set(cache_key, (time.time() + ttl, value), timeout=ttl + grace)

    def key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Return the cache key of a call."""
        return self.key_for(*args, **kwargs)

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Forget the cached value of a call (after the change it reflects has committed)."""
        cache_key = self.key_for(*args, **kwargs)
        try:
            lock = _lock(cache_key)
            # Wait out a recomputation that may have read the old rows, then delete.
            acquired = lock.acquire(
                blocking=True,
                blocking_timeout=settings.TTLS["CACHE_RECOMPUTE_LOCK"],
                sleep=WAIT_POLL_SECONDS,
            )
            try:
                cache.delete(cache_key)
            finally:
                if acquired:
                    lock.release_if_owned()
        except _CACHE_ERRORS:
            logger.error("cache=%s key=%s not invalidated: cache unavailable", self.name, cache_key)

    def warm(self, values: Mapping[str, R]) -> None:
        """Store already computed values ({cache key: value}) as fresh."""
        ttl = _seconds(self.ttl)
        grace = settings.TTLS["CACHE_STALE_GRACE"]
        fresh_until = time.time() + ttl
        cache.set_many({k: (fresh_until, v) for k, v in values.items()}, timeout=ttl + grace)


def cached(
    *,
    key: Callable[..., str],
    ttl: float | Callable[[], float],
    wait: float = 2.0,
    cache_none: bool = False,
) -> Callable[[Callable[P, R]], Cached[P, R]]:
    """Cache ``func``'s results under ``key(*args, **kwargs)`` for ``ttl`` seconds.

    ``ttl`` may be a function (read at each store, so settings overrides apply). ``wait``
    bounds how long a caller waits for someone else's computation of a missing value.
    None results are not stored unless ``cache_none``.
    """

    def decorate(func: Callable[P, R]) -> Cached[P, R]:
        return Cached(func, key=key, ttl=ttl, wait=wait, cache_none=cache_none)

    return decorate
