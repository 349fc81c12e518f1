"""Writes of the live subsystem: publish the live stats, warm the cache, roll trending over,
clean up. Each is called by one periodic task (``live.tasks``) and is safe to run twice."""

import datetime
import json
import logging
import time
from typing import Any, cast

import redis
from django.conf import settings

from core.events import send_event
from core.redis import bus, key
from matching.pool import trending_key
from ops.connections import connections_by_process
from profiles.models import Profile
from profiles.selectors import profile_public, profile_public_get

from . import selectors

logger = logging.getLogger(__name__)

# Connections subscribed with ``live.subscribe`` (docs/protocol.md, "Live feed").
LIVE_GROUP = "live"
# Message checkpoints older than this are dropped (the window needs one minute's worth).
CHECKPOINTS_KEPT_SECONDS = 300


def live_stats_compute(*, now: float | None = None) -> dict:
    """Count what the live feed shows; record this run's message checkpoint."""
    now = time.time() if now is None else now
    since = selectors.stats_window_start(now=now)
    max_id = selectors.message_max_id()
    watermark = selectors.message_watermark(
        before=now - selectors.STATS_WINDOW_SECONDS, max_id=max_id
    )
    stats = {
        "users_online": selectors.users_online_count(now=now),
        "waiting_in_pool": selectors.pool_waiting_count(),
        "matches_last_minute": selectors.matches_since_count(since=since),
        "messages_last_minute": selectors.messages_since_count(since=since, after_id=watermark),
        "trending": selectors.trending_top(limit=settings.LIVE["TRENDING_TOP"]),
        "at": selectors.now_iso(now),
    }
    name = selectors.message_checkpoints_key()
    pipe = bus(name).pipeline(transaction=False)
    pipe.zadd(name, {f"{max_id}:{now:.3f}": now})
    pipe.zremrangebyscore(name, "-inf", now - CHECKPOINTS_KEPT_SECONDS)
    pipe.expire(name, CHECKPOINTS_KEPT_SECONDS * 2)
    pipe.execute()
    return stats


def live_stats_publish(*, now: float | None = None) -> dict:
    """Compute the live stats, keep them for new subscribers and push them to the feed."""
    stats = live_stats_compute(now=now)
    bus(selectors.stats_key()).set(
        selectors.stats_key(), json.dumps(stats), ex=settings.TTLS["LIVE_STATS"]
    )
    send_event(event="live.stats", data=stats, groups=[LIVE_GROUP])
    return stats


def live_stats_last() -> dict | None:
    """Return the last published stats, if they are recent."""
    # redis-py types a command for both clients (``Awaitable[T] | T``); sync ones return T.
    name = selectors.stats_key()
    raw = cast(str | None, bus(name).get(name))
    return json.loads(raw) if raw else None


def cache_warm(*, peak: bool = False) -> int:
    """Cache the public profiles of recently active users; return how many were stored.

    ``peak`` (before the peak hour) takes ``CACHE_WARM_PEAK_PROFILES`` instead of
    ``CACHE_WARM_PROFILES``. Profiles are read in batches with their interests prefetched:
    a few queries, not one per profile.
    """
    live = settings.LIVE
    limit = live["CACHE_WARM_PEAK_PROFILES"] if peak else live["CACHE_WARM_PROFILES"]
    since = datetime.datetime.now(tz=datetime.UTC) - datetime.timedelta(
        minutes=live["CACHE_WARM_ACTIVE_MINUTES"]
    )
    recent = (
        Profile.objects.filter(last_seen__gte=since, user__is_active=True)
        .select_related("user")
        .prefetch_related("interests")
        .order_by("-last_seen")[:limit]
    )
    stored = 0
    batch: dict[str, dict] = {}
    for profile in recent.iterator(chunk_size=500):
        key = profile_public_get.key(user_id=profile.user_id)
        batch[key] = profile_public(profile=profile, with_last_seen=True)  # as cached
        if len(batch) >= 500:
            profile_public_get.warm(batch)
            stored, batch = stored + len(batch), {}
    if batch:
        profile_public_get.warm(batch)
        stored += len(batch)
    logger.info("cache warm: %s public profiles (peak=%s)", stored, peak)
    return stored


def trending_rollover(*, now: float | None = None) -> dict:
    """Start the new UTC day: trim past days' trending sets to their top, push fresh stats.

    Matching adds to one sorted set per UTC day (``matching.pool.trending_key``), each
    expiring ``TRENDING_DAYS_KEPT`` days after its last increment. Past days no longer
    change, so their long tail is only memory: keep their top ``TRENDING_TOP_MAX``.
    """
    now = time.time() if now is None else now
    keep = settings.LIMITS["TRENDING_TOP_MAX"]
    pipe = bus(trending_key(int(now * 1000))).pipeline(transaction=False)  # all mm
    for days_ago in range(1, settings.LIMITS["TRENDING_DAYS_KEPT"] + 1):
        day_ms = int((now - days_ago * 86400) * 1000)
        pipe.zremrangebyrank(trending_key(day_ms), 0, -(keep + 1))
    trimmed = sum(pipe.execute())
    stats = live_stats_publish(now=now)
    return {"trimmed": trimmed, "top": stats["trending"]}


def _scan_without_ttl(
    client: redis.Redis, pattern: str, *, ttl: int, budget: int
) -> tuple[int, int]:
    """Give ``ttl`` to keys matching ``pattern`` that have none; return (seen, fixed)."""
    seen = fixed = 0
    count = settings.LIVE["CLEANUP_SCAN_COUNT"]
    batch: list[str] = []

    def flush() -> int:
        pipe = client.pipeline(transaction=False)
        for name in batch:
            pipe.ttl(name)
        ttls = pipe.execute()
        pipe = client.pipeline(transaction=False)
        stale = [name for name, t in zip(batch, ttls, strict=True) if t == -1]
        for name in stale:
            pipe.expire(name, ttl)
        pipe.execute()
        batch.clear()
        return len(stale)

    for name in client.scan_iter(match=pattern, count=count):
        seen += 1
        batch.append(name)
        if len(batch) >= count:
            fixed += flush()
        if seen >= budget:
            break
    if batch:
        fixed += flush()
    return seen, fixed


def live_cleanup() -> dict:
    """Give stray keys back their expiry (SCAN, never KEYS) and prune dead process entries.

    Every pool and presence key is written with a TTL by its Lua script; a key found without
    one (a script changed, a manual edit) would live forever: it gets the TTL its owner
    documents (settings.TTLS). The presence and pool sweeps themselves are their apps' tasks.
    """
    budget = 100_000  # keys looked at per pattern and run: bounded work per minute
    report: dict[str, Any] = {}
    patterns = {
        "presence_conns": (key("presence", "conns", "*"), int(settings.TTLS["PRESENCE"] * 2)),
        "pool_tickets": (key("mm", "t", "*"), int(settings.TTLS["POOL_TICKET"])),
        "locks": (key("lock", "*"), 3600),
    }
    for name, (pattern, ttl) in patterns.items():
        # Each pattern is one subsystem's keys: SCAN the one server holding them.
        seen, fixed = _scan_without_ttl(bus(pattern), pattern, ttl=ttl, budget=budget)
        report[name] = {"seen": seen, "fixed": fixed}
    report["web_processes"] = len(connections_by_process())
    if any(r["fixed"] for r in report.values() if isinstance(r, dict)):
        logger.warning("cleanup gave keys without expiry a TTL: %s", report)
    return report
