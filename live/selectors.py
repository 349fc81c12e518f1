"""Reads behind the live feed: the counters of ``live.stats``.

Where presence and matching have a selector, it is used (``matching.pool.pool_size``,
``matching.selectors.trending_top``). Presence has no "how many are online" selector, so
``users_online_count`` reads its documented sorted set (``presence.selectors.users_key``:
uid -> deadline) directly with one ZCOUNT. Live stands above both (docs/architecture.md).
"""

import datetime
import time
from typing import cast

from django.conf import settings
from django.db.models import Max

from conversations.models import Message
from core.redis import bus, key
from matching import selectors as matching_selectors
from matching.models import Match
from matching.pool import pool_size
from presence.selectors import users_key

STATS_WINDOW_SECONDS = 60


def stats_key() -> str:
    """The last published ``live.stats`` payload (JSON), for new subscribers."""
    return key("live", "stats")


def message_checkpoints_key() -> str:
    """Sorted set "<max message id>:<time>" -> time, written by each stats run."""
    return key("live", "msgmax")


def users_online_count(*, now: float | None = None) -> int:
    """Return how many users have a live connection (or are in their offline grace)."""
    now = time.time() if now is None else now
    # redis-py types a command for both clients (``Awaitable[T] | T``); sync ones return T.
    name = users_key()
    return cast(int, bus(name).zcount(name, now, "+inf"))


def pool_waiting_count() -> int:
    """Return how many people wait in the matching pool."""
    return pool_size()


def matches_since_count(*, since: datetime.datetime) -> int:
    """Return how many matches were made since ``since`` (indexed on created_at)."""
    return Match.objects.filter(created_at__gte=since).count()


def trending_top(*, limit: int) -> list[dict]:
    """Return today's most shared interests as [{"interest", "score"}], best first."""
    return [
        {"interest": row["interest"], "score": row["score"]}
        for row in matching_selectors.trending_top(limit=limit)
    ]


def message_max_id() -> int:
    """Return the highest message id (one probe of the primary key index)."""
    return Message.objects.aggregate(top=Max("id"))["top"] or 0


def message_watermark(*, before: float, max_id: int) -> int:
    """Return a message id no newer than time ``before``: every later message has a larger id.

    It is the highest id seen by a stats run at or before ``before``; without such a run
    (the first minute after install) the newest ``LIVE["MESSAGES_SCAN_MAX"]`` ids are read.
    """
    name = message_checkpoints_key()
    rows = bus(name).zrevrangebyscore(name, before, "-inf", start=0, num=1)
    if rows:
        return int(rows[0].split(":")[0])
    return max(0, max_id - settings.LIVE["MESSAGES_SCAN_MAX"])


def messages_since_count(*, since: datetime.datetime, after_id: int) -> int:
    """Return how many messages were created since ``since`` among ids above ``after_id``.

    Message has no index on created_at: the id bound keeps this a short primary-key range
    scan over the last minute's rows instead of a scan of the whole table.
    """
    return Message.objects.filter(pk__gt=after_id, created_at__gte=since).count()


def stats_window_start(*, now: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(now - STATS_WINDOW_SECONDS, tz=datetime.UTC)


def now_iso(now: float) -> str:
    return datetime.datetime.fromtimestamp(now, tz=datetime.UTC).isoformat()
