"""Celery tasks of Meet: thin, each calls one service."""

from django.conf import settings

from core.periodic import periodic

from . import services


@periodic(
    name="matching.tasks.pool_sweep",
    period=lambda: settings.LIMITS["MATCH_SWEEP_SECONDS"],
    max_runtime=30.0,
)
def pool_sweep() -> dict:
    """Relax waiting seekers' criteria on time, drop expired tickets, end stale rooms."""
    return services.pool_sweep()
