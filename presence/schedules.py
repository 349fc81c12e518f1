"""Beat schedules of presence (collected with every app's ``SCHEDULES`` by ``live``).

The sweep period is half of the offline bound: a killed server's users are announced
offline at most ``PRESENCE_TTL_SECONDS + PRESENCE_SWEEP_SECONDS`` after the server's last
refresh of their sockets (docs/subsystems/presence.md).
"""

from django.conf import settings

SCHEDULES = {
    "presence.sweep": {
        "task": "presence.sweep",
        "schedule": settings.LIMITS["PRESENCE_SWEEP_SECONDS"],
        # A run not started within one period is useless: the next one does the same work.
        "options": {"expires": settings.LIMITS["PRESENCE_SWEEP_SECONDS"]},
    },
}
