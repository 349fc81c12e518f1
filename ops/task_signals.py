"""Celery signal handlers: count task runs, retries and failures, and log failures with the
task's name and id (connected in ``OpsConfig.ready``, so in every worker process).

Celery ships no types: the handlers' arguments are ``Any``.
"""

import logging
import time
from typing import Any

from celery import signals

from core.metrics import TASK_FAILURES, TASK_RETRIES, TASK_RUNS, TASK_SECONDS

logger = logging.getLogger("switchboard.tasks")

_started: dict[str, float] = {}


@signals.task_prerun.connect
def _on_prerun(task_id: Any = None, task: Any = None, **kwargs: Any) -> None:
    TASK_RUNS.labels(task.name).inc()
    _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _on_postrun(task_id: Any = None, task: Any = None, **kwargs: Any) -> None:
    started = _started.pop(task_id, None)
    if started is not None:
        TASK_SECONDS.labels(task.name).observe(time.perf_counter() - started)


@signals.task_retry.connect
def _on_retry(sender: Any = None, request: Any = None, reason: Any = None, **kwargs: Any) -> None:
    TASK_RETRIES.labels(sender.name).inc()
    logger.warning(
        "task=%s task_id=%s retry: %s", sender.name, getattr(request, "id", None), reason
    )


@signals.task_failure.connect
def _on_failure(
    sender: Any = None, task_id: Any = None, exception: Any = None, **kwargs: Any
) -> None:
    TASK_FAILURES.labels(sender.name).inc()
    logger.error(
        "task=%s task_id=%s failed: %s: %s",
        sender.name,
        task_id,
        type(exception).__name__,
        exception,
        exc_info=(type(exception), exception, exception.__traceback__),
    )
