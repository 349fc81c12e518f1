"""``RateLimitFilter``: one log line per interval for a failure that repeats on every request.

An outage of something disposable (the cache Redis) fails every cache call of every
request; logged each time, at ERROR with a traceback, it buries the log and pages a person
for what needs none (STYLE.md: ERROR is for what needs a person). Attached to a logger in
``settings.LOGGING``, this filter lets the first record of a kind (logger and message
template) through as a one-line WARNING, drops the same kind for ``seconds``, and the next
one that passes says how many were dropped meanwhile. The outage itself is visible where it
belongs: ``GET /readyz`` reports the cache as degraded.
"""

import logging
import threading
import time


class RateLimitFilter(logging.Filter):
    """Pass one record per (logger, message template) every ``seconds``, without traceback."""

    def __init__(self, seconds: float = 60.0, level: str = "WARNING") -> None:
        super().__init__()
        self.seconds = seconds
        self.levelno = logging.getLevelNamesMapping()[level]
        self._lock = threading.Lock()
        # (logger, template) -> (monotonic time it last passed, records dropped since)
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, str(record.msg))
        now = time.monotonic()
        with self._lock:
            last, dropped = self._seen.get(kind, (None, 0))
            if last is not None and now - last < self.seconds:
                self._seen[kind] = (last, dropped + 1)
                return False
            self._seen[kind] = (now, 0)
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message = f"{message}: {type(error).__name__}: {error}"
        if dropped:
            message = f"{message} ({dropped} more like it since the last report)"
        record.msg, record.args = message, None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        if record.levelno > self.levelno:
            record.levelno, record.levelname = self.levelno, logging.getLevelName(self.levelno)
        return True
