"""Structured logs: one ``key=value`` line per record (settings.LOGGING).

Inside a Celery task every record, whatever module logged it, ends with
``task=<name> task_id=<id>``, so a failure can be followed from the worker's log to beat's
and to ``/ops/stats``.
"""

import logging
import re
from typing import Any

# Query parameters whose values are credentials: a WebSocket ticket (docs/protocol.md).
_SECRET_QUERY = re.compile(r"([?&](?:ticket)=)[^&\s\"']*")
REDACTED = "[redacted]"


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        task = _current_task()
        if task is not None:
            line = f"{line} task={task.name} task_id={task.request.id}"
        return line


class RedactSecrets(logging.Filter):
    """Blank the values of credential query parameters (``?ticket=...``) in a record.

    uvicorn logs the URL of every WebSocket it accepts (``"WebSocket /ws?ticket=..."
    [accepted]`` on ``uvicorn.error``, with or without ``--no-access-log``); a ticket in a
    log file is a credential anyone who reads the log can use within its 30 s.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "ticket=" in message:
            record.msg, record.args = _SECRET_QUERY.sub(rf"\1{REDACTED}", message), None
        return True


def _current_task() -> Any:
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover - celery is a dependency
        return None
    task = current_task._get_current_object() if current_task else None
    if task is None or getattr(task.request, "id", None) is None:
        return None
    return task


class QuietProbeFailures(logging.Filter):
    """Drop Django's ERROR line for a 503 from ``/readyz`` (below DEBUG level logging).

    A 503 there is the probe's answer while a dependency is starting or away (``make run``
    polls it until the worker and beat are up; an orchestrator polls it forever), with the
    failed checks in its body; the outage itself is logged where it is met. At
    ``LOG_LEVEL=DEBUG`` the line is kept, as a DEBUG record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if getattr(record, "status_code", None) != 503 or getattr(request, "path", "") != "/readyz":
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
