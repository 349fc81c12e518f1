"""The beat scheduler: django-celery-beat's database scheduler plus a heartbeat.

Each tick writes the time to ``ops:beat:tick`` on the bus; ``GET /readyz`` fails when it is
older than ``OPS["READY_BEAT_MAX_AGE_SECONDS"]``. The database scheduler ticks at least every
5 seconds (its ``max_interval``), so the age measures beat itself, not the schedules.
"""

import logging
import time
from typing import Any

from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

from core.redis import bus, key

logger = logging.getLogger(__name__)


def beat_tick_key() -> str:
    return key("ops", "beat", "tick")


class HeartbeatScheduler(DatabaseScheduler):
    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            bus(beat_tick_key()).set(
                beat_tick_key(), repr(time.time()), ex=settings.TTLS["BEAT_HEARTBEAT"]
            )
        except Exception:  # a missed heartbeat must not stop the schedule
            logger.warning("beat heartbeat not written", exc_info=True)
        return super().tick(*args, **kwargs)
