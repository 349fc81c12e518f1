"""Beat schedules of Meet (collected with every app's ``SCHEDULES`` by ``live``).

The sweep period is the granularity of relaxation: a seeker's criteria widen at most
``MATCH_SWEEP_SECONDS`` after the documented step time (docs/subsystems/matching.md).
"""

from django.conf import settings

SCHEDULES = {
    "matching.pool_sweep": {
        "task": "matching.tasks.pool_sweep",
        "schedule": settings.LIMITS["MATCH_SWEEP_SECONDS"],
        "description": "Relax waiting seekers on time, drop expired tickets, end stale rooms.",
        # A run not started within one period is useless: the next one does the same work.
        "options": {"expires": settings.LIMITS["MATCH_SWEEP_SECONDS"]},
    },
}
