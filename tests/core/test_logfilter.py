"""``core.logfilter.RateLimitFilter``: a failure repeated per call is one line per interval."""

import logging
import time

from core.logfilter import RateLimitFilter


def _logger(name: str, seconds: float) -> tuple[logging.Logger, list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(f"tests.logfilter.{name}")
    logger.propagate = False
    logger.handlers = [handler]
    logger.filters = [RateLimitFilter(seconds=seconds)]
    return logger, records


def test_a_repeated_error_passes_once_per_interval_as_a_warning_without_traceback():
    logger, records = _logger("repeat", seconds=60)
    for i in range(50):
        try:
            raise ConnectionError(f"refused {i}")
        except ConnectionError:
            logger.exception("cache=%s unavailable", "profile")
    logger.warning("another kind of message")
    assert [r.getMessage() for r in records] == [
        "cache=profile unavailable: ConnectionError: refused 0",
        "another kind of message",
    ]
    assert records[0].levelname == "WARNING"
    assert records[0].exc_info is None


def test_the_next_line_after_the_interval_counts_what_was_dropped():
    logger, records = _logger("count", seconds=0.2)
    for _ in range(5):
        logger.error("down")
    time.sleep(0.25)
    logger.error("down")
    assert [r.getMessage() for r in records] == [
        "down",
        "down (4 more like it since the last report)",
    ]
