"""Readiness checks: each dependency probed and timed."""

import time
from collections.abc import Callable

from django.core.cache import cache
from django.db import connection

from switchboard.redis import bus


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_bus() -> None:
    bus().ping()


def _check_cache() -> None:
    client = cache.client.get_client(write=True)
    client.ping()


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "redis_bus": _check_bus,
    "redis_cache": _check_cache,
}


def readiness_report() -> tuple[bool, dict]:
    """Run every check; return (all passed, {name: {ok, ms, error?}})."""
    results: dict[str, dict] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # any failure makes the process not ready
            results[name] = {
                "ok": False,
                "ms": round((time.perf_counter() - started) * 1000, 2),
                "error": f"{type(exc).__name__}: {exc}"[:300],
            }
        else:
            results[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}
    return all(r["ok"] for r in results.values()), results
