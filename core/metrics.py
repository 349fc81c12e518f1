"""Prometheus metrics, shared by every process of a host (prometheus-client multiprocess mode).

Each process (web servers, Celery worker children, beat) writes its values to memory-mapped
files in ``PROMETHEUS_MULTIPROC_DIR`` (set by settings before this module is imported);
``GET /metrics`` on any web process merges every file of the host. Gauges of processes that
died (even by SIGKILL, which runs no hook) are dropped by ``metrics_forget_dead``, called
before each scrape and by ``manage.py bootstrap``. Label values are bounded: frame types
come from the router's and the schema's tables, task names from the registered tasks.
"""

import asyncio
import glob
import os
import re
from collections.abc import Container
from typing import Any

from django.conf import settings

# Reading settings exports PROMETHEUS_MULTIPROC_DIR, which prometheus_client reads once, at
# import, to choose its multiprocess value class: so settings first, then the library.
MULTIPROC_DIR = settings.PROMETHEUS_MULTIPROC_DIR

from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def metrics_forget_dead() -> int:
    """Drop the live gauges of processes that no longer exist; return how many were dropped."""
    if not MULTIPROC_DIR:
        return 0
    dead = set()
    for path in glob.glob(os.path.join(MULTIPROC_DIR, "gauge_live*_*.db")):
        match = _LIVE_GAUGE_FILE.search(os.path.basename(path))
        if match and not _pid_alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in dead:
        multiprocess.mark_process_dead(pid, MULTIPROC_DIR)
    return len(dead)


# A process reusing the pid of one that died without cleanup would otherwise start its
# gauges from the dead process' values.
if MULTIPROC_DIR:
    multiprocess.mark_process_dead(os.getpid(), MULTIPROC_DIR)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HTTP_REQUESTS = Counter(
    "switchboard_http_requests_total", "HTTP requests answered.", ["method", "status"]
)
HTTP_SECONDS = Histogram(
    "switchboard_http_request_seconds", "Time to answer an HTTP request.", ["method"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
WS_CONNECTIONS = Gauge(
    "switchboard_ws_connections",
    "Open authenticated WebSocket connections.",
    multiprocess_mode="livesum",
)
WS_OPENED = Counter("switchboard_ws_connections_opened_total", "WebSocket connections accepted.")
WS_FRAMES_IN = Counter(
    "switchboard_ws_frames_in_total", "Frames received from clients, by request type.", ["type"]
)
WS_FRAMES_OUT = Counter(
    "switchboard_ws_frames_out_total", "Frames sent to clients, by frame type.", ["type"]
)
MESSAGE_SEND_SECONDS = Histogram(
    "switchboard_message_send_seconds",
    "Time for message_send to validate, store and schedule the push of one message.",
    buckets=LATENCY_BUCKETS,
)
CACHE_REQUESTS = Counter(
    "switchboard_cache_requests_total",
    "Calls of @cached functions by outcome: hit, miss, refresh, stale, waited, gave_up, error.",
    ["function", "result"],
)
MATCHES = Counter("switchboard_matches_total", "Pairs made by the matching pool.")
TASK_RUNS = Counter("switchboard_task_runs_total", "Celery task runs started.", ["task"])
TASK_FAILURES = Counter("switchboard_task_failures_total", "Celery task runs failed.", ["task"])
TASK_RETRIES = Counter("switchboard_task_retries_total", "Celery task retries.", ["task"])
TASK_SKIPS = Counter(
    "switchboard_task_skips_total", "Periodic runs skipped (already ran or running).", ["task"]
)
TASK_SECONDS = Histogram(
    "switchboard_task_seconds", "Celery task run time.", ["task"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0),
)  # fmt: skip


class LabelCache:
    """``counter.labels(value).inc()``, cheap enough for every frame in and out.

    The library's label lookup takes a lock and a tuple key, and each increment in
    multiprocess mode writes the process' memory-mapped file: both showed in fan-out
    profiles (7 % of a server's time). Children are looked up once per value, and the
    increments made during one round of the event loop are written together at its end (a
    fan-out to 500 sockets is one write, not 500); outside a running loop they are written
    at once.
    """

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.children: dict[str, Any] = {}
        self.pending: dict[str, int] = {}
        # The loop whose next round writes them (a loop that ended first never did).
        self._flush_on: asyncio.AbstractEventLoop | None = None

    def inc(self, value: str) -> None:
        pending = self.pending
        pending[value] = pending.get(value, 0) + 1
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._flush_on is not loop:
            self._flush_on = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write the pending increments to the counter."""
        self._flush_on = None
        pending, self.pending = self.pending, {}
        for value, count in pending.items():
            child = self.children.get(value)
            if child is None:
                child = self.children[value] = self.counter.labels(value)
            child.inc(count)


WS_FRAMES_IN_BY_TYPE = LabelCache(WS_FRAMES_IN)
WS_FRAMES_OUT_BY_TYPE = LabelCache(WS_FRAMES_OUT)


def frame_type_label(frame_type: object, known: Container[str]) -> str:
    """Return ``frame_type`` if it is one of ``known``, else "unknown" (bounded labels)."""
    return frame_type if isinstance(frame_type, str) and frame_type in known else "unknown"


def metrics_render() -> tuple[bytes, str]:
    """Return the exposition of every process of this host, and its content type."""
    for cache in (WS_FRAMES_IN_BY_TYPE, WS_FRAMES_OUT_BY_TYPE):
        cache.flush()  # this process' increments of the current round, too
    if not MULTIPROC_DIR:
        from prometheus_client import REGISTRY

        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    metrics_forget_dead()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
    return generate_latest(registry), CONTENT_TYPE_LATEST
