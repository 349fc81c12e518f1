"""Periodic tasks of the live subsystem: thin, each calls one service (live.services).

Declared in live/schedules.py; guarded by ``core.periodic`` (once per period, never two at
a time, retried with backoff on transient errors).
"""

from django.conf import settings

from core.periodic import periodic

from . import services

DAY_SECONDS = 86400.0


@periodic(name="live.stats_push", period=lambda: settings.LIVE["STATS_SECONDS"], max_retries=1)
def stats_push() -> dict:
    """Count users online, pool, matches, messages and trending; push to the live feed."""
    return services.live_stats_publish()


@periodic(name="live.cache_warm", period=lambda: settings.LIVE["CACHE_WARM_SECONDS"])
def cache_warm() -> int:
    """Cache the public profiles of recently active users."""
    return services.cache_warm()


@periodic(name="live.cache_warm_peak", period=lambda: DAY_SECONDS, max_runtime=600.0)
def cache_warm_peak() -> int:
    """Before the peak hour: cache many more recently active profiles."""
    return services.cache_warm(peak=True)


@periodic(name="live.trending_rollover", period=lambda: DAY_SECONDS)
def trending_rollover() -> dict:
    """Start the new UTC day's trending: trim past days, push the new top list."""
    return services.trending_rollover()


@periodic(name="live.cleanup", period=lambda: settings.LIVE["CLEANUP_SECONDS"], max_runtime=120.0)
def cleanup() -> dict:
    """Give stray pool / presence keys their expiry back (SCAN); prune dead web processes."""
    return services.live_cleanup()
