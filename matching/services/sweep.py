"""Periodic work of Meet (Celery Beat: ``matching.tasks.pool_sweep``)."""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from core.errors import ServiceError

from .. import liveness, pool, selectors
from ..models import Match
from .entering import match_decide
from .rooms import match_end

logger = logging.getLogger(__name__)


def matches_expire(*, limit: int) -> int:
    """End rooms open longer than LIMITS["MATCH_MAX_SECONDS"]; return how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.LIMITS["MATCH_MAX_SECONDS"])
    ids = Match.objects.filter(ended_at__isnull=True, created_at__lt=cutoff).values_list(
        "pk", flat=True
    )[:limit]
    return sum(match_end(match_id=pk, reason=Match.EndReason.EXPIRED) for pk in list(ids))


def partners_left_end(*, limit: int, now: int | None = None) -> int:
    """End the matches of members without a Meet connection for the grace; return how many."""
    ended = 0
    for user_id in liveness.members_gone(limit=limit, now=now):
        match = selectors.match_active_for_user(user_id=user_id)
        if match is not None:  # None: it ended meanwhile, or its row is not written yet
            ended += match_end(
                match_id=match.pk, reason=Match.EndReason.PARTNER_LEFT, by_user_id=user_id
            )
    return ended


def pool_sweep(*, now: int | None = None) -> dict:
    """Expire stale tickets, re-decide for seekers whose step relaxed, end stale rooms and
    the rooms of partners who left.

    Idempotent: run twice, the second run finds nothing to do. The Celery task
    (``matching.tasks.pool_sweep``) runs it under a Redis lock so two never overlap.
    """
    batch = settings.LIMITS["MATCH_SWEEP_BATCH"]
    expired = pool.pool_expire(limit=batch, now=now)
    matched = 0
    for user_id in pool.pool_due(limit=batch, now=now):
        try:
            matched += match_decide(user_id=user_id, now=now) is not None
        except ServiceError:
            logger.info("user=%s sweep decision refused", user_id, exc_info=True)
    ended = matches_expire(limit=batch)
    left = partners_left_end(limit=batch, now=now)
    return {"expired": expired, "matched": matched, "rooms_ended": ended, "partners_left": left}
