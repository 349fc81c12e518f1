"""Beat schedules of notifications (collected by ``ops.schedules``)."""

from django.conf import settings

SCHEDULES = {
    "notifications.scan": {
        "task": "notifications.scan",
        "schedule": settings.LIMITS["NOTIFY_SCAN_SECONDS"],
        # A scan not started within its period is useless: the next one does the same work.
        "options": {"expires": settings.LIMITS["NOTIFY_SCAN_SECONDS"]},
    },
}
