"""Structured logs: one ``key=value`` line per record (settings.LOGGING).

Inside a Celery task every record, whatever module logged it, ends with
``task=<name> task_id=<id>``, so a failure can be followed from the worker's log to beat's
and to ``/ops/stats``.
"""

import logging
from typing import Any


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        task = _current_task()
        if task is not None:
            line = f"{line} task={task.name} task_id={task.request.id}"
        return line


def _current_task() -> Any:
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover - celery is a dependency
        return None
    task = current_task._get_current_object() if current_task else None
    if task is None or getattr(task.request, "id", None) is None:
        return None
    return task
