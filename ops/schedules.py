"""Every periodic task of Switchboard, declared in one place and installed into
django-celery-beat's tables (so admins see them, and beat reads them from the database).

Each app that has periodic work keeps a ``schedules`` module next to its tasks exposing
``SCHEDULES`` (a dict) or ``schedules()`` (a function returning one, read at install time so
settings overrides apply), in Celery's ``beat_schedule`` format::

    {"<unique name>": {"task": "<registered task name>",
                       "schedule": <seconds | timedelta | celery.schedules.crontab>,
                       "kwargs": {...}, "options": {"expires": <seconds>}}}

``manage.py bootstrap`` (run by ``make run`` and by every deployment) calls
``schedules_install``: idempotent, it creates what is missing, resets what drifted from the
declaration, keeps an admin's ``enabled`` switch, and deletes the rows it installed earlier
whose declaration is gone. Rows created by hand in the admin are never touched.
"""

import datetime
import importlib
import json
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

# Apps whose ``schedules`` module is collected, in this order.
SCHEDULE_MODULES = [
    "live.schedules",
    "presence.schedules",
    "matching.schedules",
    "notifications.schedules",
]

# Marks the periodic tasks this module owns (PeriodicTask.description).
MANAGED_MARK = "[ops.schedules]"


def _module_schedules(module_name: str) -> dict:
    package = module_name.split(".")[0]
    if not apps.is_installed(package):
        return {}
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name in (module_name, package):
            return {}  # the app has no periodic work (yet)
        raise
    declared = getattr(module, "schedules", None)
    entries = declared() if callable(declared) else getattr(module, "SCHEDULES", {})
    return dict(entries)


def schedules_collect() -> dict[str, dict]:
    """Return every declared schedule, by name; a name declared twice is an error."""
    collected: dict[str, dict] = {}
    origin: dict[str, str] = {}
    for module_name in SCHEDULE_MODULES:
        for name, entry in _module_schedules(module_name).items():
            if name in collected:
                raise ImproperlyConfigured(
                    f"schedule {name!r} declared in {origin[name]} and {module_name}"
                )
            collected[name] = entry
            origin[name] = module_name
    return collected


def _schedule_row(schedule: object) -> tuple[Any, Any]:
    """Return the (interval, crontab) rows of a declared schedule, saved if new."""
    from celery.schedules import crontab
    from celery.schedules import schedule as interval_schedule
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule

    if isinstance(schedule, int | float):
        schedule = datetime.timedelta(seconds=schedule)
    if isinstance(schedule, interval_schedule) and not isinstance(schedule, crontab):
        schedule = schedule.run_every
    if isinstance(schedule, datetime.timedelta):
        # django-celery-beat counts whole seconds; at least one.
        every = max(1, round(schedule.total_seconds()))
        row, _ = IntervalSchedule.objects.get_or_create(
            every=every, period=IntervalSchedule.SECONDS
        )
        return row, None
    if isinstance(schedule, crontab):
        row = CrontabSchedule.from_schedule(schedule)
        if row.pk is None:
            row.save()
        return None, row
    raise ImproperlyConfigured(f"unsupported schedule {schedule!r}")


def schedules_install() -> dict[str, list[str]]:
    """Make django-celery-beat's tables match the declarations; return what changed."""
    from django_celery_beat.models import PeriodicTask

    declared = schedules_collect()
    report: dict[str, list[str]] = {"created": [], "updated": [], "deleted": [], "kept": []}
    with transaction.atomic():
        existing = {t.name: t for t in PeriodicTask.objects.filter(name__in=declared)}
        for name, entry in declared.items():
            interval, crontab = _schedule_row(entry["schedule"])
            options = entry.get("options", {})
            expires = options.get("expires")
            wanted = {
                "task": entry["task"],
                "interval": interval,
                "crontab": crontab,
                "solar": None,
                "clocked": None,
                "args": json.dumps(list(entry.get("args", ()))),
                "kwargs": json.dumps(entry.get("kwargs", {}), sort_keys=True),
                "queue": options.get("queue"),
                "expire_seconds": int(expires) if expires else None,
                "description": f"{MANAGED_MARK} {entry.get('description', '')}".strip(),
            }
            task = existing.get(name)
            if task is None:
                PeriodicTask.objects.create(name=name, enabled=True, **wanted)
                report["created"].append(name)
                continue
            drift = {f: v for f, v in wanted.items() if getattr(task, f) != v}
            if not drift:
                report["kept"].append(name)
                continue
            for field, value in drift.items():
                setattr(task, field, value)
            task.save()  # bumps PeriodicTasks.last_update: beat reloads its schedule
            report["updated"].append(name)
        gone = PeriodicTask.objects.filter(description__startswith=MANAGED_MARK).exclude(
            name__in=declared
        )
        report["deleted"] = sorted(gone.values_list("name", flat=True))
        for task in gone:
            task.delete()
    return report
