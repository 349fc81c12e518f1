"""The scan is declared with every other Beat schedule (ops.schedules) at its setting's period."""

from django.conf import settings

from ops.schedules import schedules_collect


def test_the_scan_is_collected_with_the_other_schedules():
    entry = schedules_collect()["notifications.scan"]
    assert entry["task"] == "notifications.scan"
    assert entry["schedule"] == settings.LIMITS["NOTIFY_SCAN_SECONDS"]
    assert entry["options"]["expires"] == settings.LIMITS["NOTIFY_SCAN_SECONDS"]
