"""Readiness checks (each dependency probed and timed) and the numbers of GET /ops/stats."""

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any, cast

import redis
from celery import current_app
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from core.loop import loop_run
from core.periodic import history_key, runs_key, skips_key
from core.redis import bus, buses

from .beat import beat_tick_key
from .connections import connections_by_process


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_bus() -> None:
    for client in buses():  # every shard: a key of any subsystem may live on any
        client.ping()


def _check_cache() -> None:
    # django-redis' backend (settings.CACHES); django-stubs types ``cache`` as the base class.
    client = cast(Any, cache).client.get_client(write=True)
    client.ping()


async def _layer_round_trip(timeout: float) -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel("readyz.")
    token = secrets.token_hex(8)
    try:
        async with asyncio.timeout(timeout):
            await layer.send(channel, {"type": "readyz.echo", "token": token})
            message = await layer.receive(channel)
    finally:
        # channels_redis unsubscribes a channel when a receive on it is cancelled; it has no
        # public "delete channel", so cancel a receive to drop our subscription.
        pending = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0)
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
    if message.get("token") != token:
        raise RuntimeError("the channel layer returned someone else's message")


def _check_channel_layer() -> None:
    timeout = settings.OPS["READY_LAYER_TIMEOUT_SECONDS"]
    loop_run(_layer_round_trip, timeout, timeout=timeout + 1)


def _check_celery_worker() -> None:
    # limit=1: return as soon as one worker answers instead of waiting out the timeout.
    replies = current_app.control.ping(
        timeout=settings.OPS["READY_WORKER_TIMEOUT_SECONDS"], limit=1
    )
    if not replies:
        raise RuntimeError("no Celery worker answered a ping")


def beat_age() -> float | None:
    """Return seconds since beat's last tick, or None if it never ticked (or long ago)."""
    # redis-py types a command for both clients (``Awaitable[T] | T``); sync ones return T.
    name = beat_tick_key()
    value = cast(str | None, bus(name).get(name))
    return None if value is None else max(0.0, time.time() - float(value))


def _check_celery_beat() -> None:
    age = beat_age()
    limit = settings.OPS["READY_BEAT_MAX_AGE_SECONDS"]
    if age is None:
        raise RuntimeError("beat has not ticked")
    if age > limit:
        raise RuntimeError(f"beat last ticked {age:.0f} s ago (limit {limit} s)")


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "redis_bus": _check_bus,
    "redis_cache": _check_cache,
    "channel_layer": _check_channel_layer,
    "celery_worker": _check_celery_worker,
    "celery_beat": _check_celery_beat,
}


# What a web process itself needs to serve its requests and sockets: ``/readyz?scope=web``,
# the probe that takes one process out of a load balancer. Without a worker or beat no
# periodic work runs and no live feed is pushed, but every process is as able to serve as
# the next: taking them all out of rotation for it would turn a worker outage into a site
# outage (docs/subsystems/operations.md).
WEB_CHECKS = frozenset({"database", "redis_bus", "redis_cache", "channel_layer"})

# Checks whose failure degrades the service but leaves it up: the cache is disposable
# (sessions and cached values fall back to PostgreSQL), so a load balancer must not take
# every web process out of rotation because the cache Redis is away.
DEGRADABLE = frozenset({"redis_cache"})


def readiness_report(
    *, only: frozenset[str] | None = None
) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Run every check (or those in ``only``); return (every essential check passed,
    {name: {ok, ms, error?}})."""
    results: dict[str, dict[str, Any]] = {}
    for name, check in CHECKS.items():
        if only is not None and name not in only:
            continue
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
    return all(r["ok"] for name, r in results.items() if name not in DEGRADABLE), results


def _pool_stats(pool: Any) -> dict[str, Any]:
    # redis-py keeps every connection it made in ``_connections`` (idle ones also in
    # ``pool`` for a BlockingConnectionPool): the only way to see the in-use count.
    made = len(getattr(pool, "_connections", []))
    idle = sum(1 for c in getattr(getattr(pool, "pool", None), "queue", []) if c is not None)
    return {"max": pool.max_connections, "open": made, "in_use": max(0, made - idle)}


def _redis_stats(client: redis.Redis) -> dict[str, Any]:
    info = cast(dict[str, Any], client.info())
    hits, misses = info.get("keyspace_hits", 0), info.get("keyspace_misses", 0)
    return {
        "hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
        "keyspace_hits": hits,
        "keyspace_misses": misses,
        "evicted_keys": info.get("evicted_keys", 0),
        "used_memory": info.get("used_memory"),
        "used_memory_human": info.get("used_memory_human"),
        "maxmemory": info.get("maxmemory"),
        "maxmemory_policy": info.get("maxmemory_policy"),
        "connected_clients": info.get("connected_clients"),
        "pool": _pool_stats(client.connection_pool),
    }


def _task_stats() -> dict:
    client = bus(runs_key())  # the tasks subsystem: one server
    runs = cast(dict[str, str], client.hgetall(runs_key()))
    skips = cast(dict[str, str], client.hgetall(skips_key()))
    out = {}
    for name in sorted(set(runs) | set(skips)):
        last = cast(str | None, client.lindex(history_key(name), 0))
        out[name] = {
            "runs": int(runs.get(name, 0)),
            "skips": int(skips.get(name, 0)),
            "last_run_age_seconds": round(time.time() - float(last), 1) if last else None,
        }
    return out


def ops_stats() -> dict:
    """Return the numbers an operator looks at first (GET /ops/stats)."""
    ws = connections_by_process()
    age = beat_age()
    try:
        cache_stats = _redis_stats(cast(Any, cache).client.get_client(write=True))
    except (redis.RedisError, OSError) as exc:  # the cache is disposable: report, go on
        cache_stats = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return {
        "cache": cache_stats,
        "bus": _redis_stats(buses()[0]),
        "bus_shards": [_redis_stats(client) for client in buses()],
        "websockets": {"total": sum(ws.values()), "by_process": ws},
        "beat_age_seconds": None if age is None else round(age, 1),
        "tasks": _task_stats(),
    }
