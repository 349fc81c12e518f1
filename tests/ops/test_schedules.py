"""ops.schedules: one declaration, installed idempotently into django-celery-beat."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from ops.schedules import MANAGED_MARK, schedules_collect, schedules_install

pytestmark = pytest.mark.django_db


def test_every_app_schedule_is_collected():
    names = set(schedules_collect())
    assert {"live.stats", "core.cache-warm", "live.cleanup", "live.trending-rollover"} <= names
    assert {"presence.sweep", "matching.pool_sweep"} <= names


def test_install_is_idempotent():
    first = schedules_install()
    assert set(first["created"]) == set(schedules_collect())
    second = schedules_install()
    assert second["created"] == second["updated"] == second["deleted"] == []
    assert PeriodicTask.objects.filter(name="live.stats").count() == 1


def test_install_resets_drift_keeps_enabled_and_drops_what_is_gone(settings):
    schedules_install()
    stats = PeriodicTask.objects.get(name="live.stats")
    stats.enabled = False
    stats.interval = IntervalSchedule.objects.create(every=999, period=IntervalSchedule.SECONDS)
    stats.save()
    PeriodicTask.objects.create(
        name="live.retired", task="live.cleanup", interval=stats.interval, description=MANAGED_MARK
    )
    by_hand = PeriodicTask.objects.create(
        name="admin.made", task="live.cleanup", interval=stats.interval
    )
    settings.LIVE = {**settings.LIVE, "STATS_SECONDS": 7}
    report = schedules_install()
    assert report["updated"] == ["live.stats"]
    assert report["deleted"] == ["live.retired"]
    stats.refresh_from_db()
    assert stats.interval.every == 7
    assert stats.enabled is False  # an admin's pause survives
    assert stats.expire_seconds == 7
    assert PeriodicTask.objects.filter(pk=by_hand.pk).exists()


def test_bootstrap_installs_schedules_also_without_debug(settings):
    settings.DEBUG = False
    call_command("bootstrap")
    assert PeriodicTask.objects.filter(name="live.stats", task="live.stats_push").exists()
    assert not get_user_model().objects.filter(username="alice").exists()


def test_peak_warm_runs_before_the_peak_hour(settings):
    settings.LIVE = {**settings.LIVE, "PEAK_HOUR_UTC": 0, "PEAK_LEAD_MINUTES": 15}
    schedules_install()
    crontab = PeriodicTask.objects.get(name="core.cache-warm-peak").crontab
    assert (crontab.hour, crontab.minute) == ("23", "45")
