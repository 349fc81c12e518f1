"""Celery tasks of presence: thin, each calls one service."""

from django.conf import settings

from core.periodic import periodic

from . import services


@periodic(
    name="presence.sweep",
    period=lambda: settings.LIMITS["PRESENCE_SWEEP_SECONDS"],
    max_runtime=30.0,
)
def presence_sweep() -> int:
    """Announce offline the users whose last connection expired or closed (grace over)."""
    return len(services.presence_sweep())
