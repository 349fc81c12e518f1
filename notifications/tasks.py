"""Celery tasks of notifications: thin, each calls one service."""

import datetime

from celery import shared_task
from django.conf import settings

from core.periodic import TRANSIENT_ERRORS, periodic

from . import delivery, selectors


@periodic(
    name="notifications.scan",
    period=lambda: settings.LIMITS["NOTIFY_SCAN_SECONDS"],
    max_runtime=30.0,
)
def notifications_scan() -> int:
    """Queue one ``notifications.absence`` per member who is away with news."""
    found = selectors.away_with_news()
    for user_id, since in found:
        absence_notify.delay(user_id=user_id, away_since=since.isoformat())
    return len(found)


@shared_task(
    name="notifications.absence",
    autoretry_for=(*TRANSIENT_ERRORS, OSError),  # OSError: the SMTP server
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=3,
)
def absence_notify(*, user_id: int, away_since: str) -> bool:
    """Tell one away member about their news, once for this absence."""
    since = datetime.datetime.fromisoformat(away_since)
    return delivery.absence_notify(user_id=user_id, away_since=since) is not None
