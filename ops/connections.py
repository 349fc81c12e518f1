"""Open WebSocket connections per server process, for ``GET /ops/stats`` and ``/metrics``.

Each web process keeps its count in memory and mirrors it into one bus hash,
``ops:ws`` = {``<host>:<pid>``: ``<count> <unix time>``}, on every connect and disconnect and,
while frames flow, at most every ``REFRESH_SECONDS``. The hash itself expires after
``TTLS["WS_PROCESS_COUNT"]`` without writes, and readers ignore (and delete) entries older
than that: a SIGKILLed process disappears from the table instead of haunting it.
"""

import asyncio
import logging
import os
import socket
import time
from typing import Any, cast

from django.conf import settings

from core.metrics import WS_CONNECTIONS, WS_OPENED
from core.redis import abus, bus, key

logger = logging.getLogger(__name__)

# While frames flow, a process re-writes its entry at most this often (well under the TTL).
REFRESH_SECONDS = 15.0

PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}"
_open = 0
_last_write = 0.0
_pending: set[asyncio.Task] = set()


def ws_key() -> str:
    return key("ops", "ws")


async def _write() -> None:
    global _last_write
    _last_write = time.monotonic()
    ttl = int(settings.TTLS["WS_PROCESS_COUNT"])
    pipe = abus(ws_key()).pipeline(transaction=False)
    pipe.hset(ws_key(), PROCESS_ID, f"{_open} {time.time():.3f}")
    pipe.expire(ws_key(), ttl)
    try:
        await pipe.execute()
    except Exception:  # a statistic: never worth failing a connection for
        logger.warning("open-connection count not written", exc_info=True)


_writing: asyncio.AbstractEventLoop | None = None  # the loop of the write in flight
_dirty = False


async def _write_coalesced() -> None:
    """Write the count now, unless a write is in flight: that one then writes again.

    A burst of connects and disconnects (a reconnect storm: thousands per second) costs a
    few writes, not one Redis round trip each; a lone connect is written before it returns.
    """
    global _writing, _dirty
    loop = asyncio.get_running_loop()
    if _writing is loop:
        _dirty = True
        return
    _writing = loop  # (a write left in flight by a loop that has gone never blocks this one)
    try:
        while True:
            _dirty = False
            await _write()
            if not _dirty:
                return
    finally:
        if _writing is loop:
            _writing = None


async def connection_opened() -> None:
    """Count one more open connection in this process."""
    global _open
    _open += 1
    WS_CONNECTIONS.inc()
    WS_OPENED.inc()
    await _write_coalesced()


async def connection_closed() -> None:
    """Count one connection fewer in this process."""
    global _open
    _open = max(0, _open - 1)
    WS_CONNECTIONS.dec()
    await _write_coalesced()


def connection_active() -> None:
    """Refresh this process' entry if it is getting old (called on incoming frames)."""
    if time.monotonic() - _last_write < REFRESH_SECONDS:
        return
    task = asyncio.ensure_future(_write())
    _pending.add(task)  # keep a reference until done (the loop holds only weak ones)
    task.add_done_callback(_pending.discard)


def connections_by_process() -> dict[str, int]:
    """Return {process: open connections} of the live web processes; drop stale entries."""
    client = bus(ws_key())
    now = time.time()
    ttl = settings.TTLS["WS_PROCESS_COUNT"]
    live, stale = {}, []
    # redis-py types a command for both clients (``Awaitable[T] | T``); sync ones return T.
    for process, value in cast(dict[str, Any], client.hgetall(ws_key())).items():
        try:
            count, stamp = value.split()
            count, stamp = int(count), float(stamp)
        except ValueError:
            stale.append(process)
            continue
        if now - stamp > ttl:
            stale.append(process)
        else:
            live[process] = count
    if stale:
        client.hdel(ws_key(), *stale)
    return live
