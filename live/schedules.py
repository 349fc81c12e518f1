"""Live's periodic tasks (collected by ops/schedules.py; periods in settings.LIVE)."""

from celery.schedules import crontab
from django.conf import settings


def peak_warm_time() -> tuple[int, int]:
    """Return (hour, minute) UTC at which the cache is warmed before the peak hour."""
    start = settings.LIVE["PEAK_HOUR_UTC"] * 60 - settings.LIVE["PEAK_LEAD_MINUTES"]
    start %= 24 * 60
    return start // 60, start % 60


def schedules() -> dict:
    live = settings.LIVE
    hour, minute = peak_warm_time()
    return {
        "live.stats": {
            "task": "live.stats_push",
            "schedule": live["STATS_SECONDS"],
            # Stats older than one period are worthless: a backed-up queue drops them.
            "options": {"expires": live["STATS_SECONDS"]},
            "description": "Count users online, pool, matches, messages; push to the live feed.",
        },
        "core.cache-warm": {
            "task": "live.cache_warm",
            "schedule": live["CACHE_WARM_SECONDS"],
            "options": {"expires": live["CACHE_WARM_SECONDS"]},
            "description": "Cache the public profiles of recently active users.",
        },
        "core.cache-warm-peak": {
            "task": "live.cache_warm_peak",
            "schedule": crontab(minute=minute, hour=hour),
            "description": "Before the peak hour, cache many more recently active profiles.",
        },
        "live.trending-rollover": {
            "task": "live.trending_rollover",
            "schedule": crontab(minute=0, hour=0),
            "description": "Start the new UTC day's trending set; publish the new top list.",
        },
        "live.cleanup": {
            "task": "live.cleanup",
            "schedule": live["CLEANUP_SECONDS"],
            "options": {"expires": live["CLEANUP_SECONDS"]},
            "description": "SCAN for pool / presence keys without expiry; prune dead processes.",
        },
    }
