"""One long-lived event loop per process for synchronous code that talks to the channel layer.

Why not ``async_to_sync`` (what ``core.events`` used first): outside a server's event
loop (a Celery worker, a management command, a thread of our own) every call creates an event
loop, runs the coroutine and closes the loop. channels_redis binds its Redis connections to
the loop that opened them, so each call either leaks a connection or hits "Event loop is
closed" / "attached to a different loop" when a pool outlives its loop (channels_redis#332,
#312, #266; channels#859; celery-progress#106). The pub/sub layer copes by building a whole
layer per loop and flushing it when the loop closes: a new layer, pool and connection per
published event.

What we do instead: a daemon thread per process runs one event loop forever; every sync
caller submits its coroutine there and waits for the result. The layer built for that loop
keeps one publishing connection for the life of the process. After ``fork()`` (Celery's
prefork pool) the child starts its own thread and loop on first use: a loop, its thread and
its sockets never cross a fork.
"""

import asyncio
import atexit
import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# A publish or a layer round trip that takes longer than this is reported as failed.
DEFAULT_TIMEOUT_SECONDS = 5.0

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_owner_pid: int | None = None


def _start() -> asyncio.AbstractEventLoop:
    global _loop, _owner_pid
    loop = asyncio.new_event_loop()
    running = threading.Event()
    loop.call_soon(running.set)
    thread = threading.Thread(target=loop.run_forever, name="channel-layer-loop", daemon=True)
    thread.start()
    # Callers outside the lock test is_running(): return only once it is true, or a second
    # caller could start a second loop (and a second layer with its own connection).
    running.wait()
    _loop, _owner_pid = loop, os.getpid()
    return loop


def _forget_after_fork() -> None:
    # The parent's loop thread does not exist in the child; never touch its loop or sockets.
    global _loop, _owner_pid
    _loop, _owner_pid = None, None


os.register_at_fork(after_in_child=_forget_after_fork)


def loop_get() -> asyncio.AbstractEventLoop:
    """Return this process' background loop, starting it on first use."""
    loop = _loop
    if loop is not None and _owner_pid == os.getpid() and loop.is_running():
        return loop
    with _lock:
        if _loop is not None and _owner_pid == os.getpid() and _loop.is_running():
            return _loop
        return _start()


def loop_run(
    func: Callable[..., Coroutine[Any, Any, T]],
    *args: Any,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    **kwargs: Any,
) -> T:
    """Run ``func(*args, **kwargs)`` on the background loop and return its result.

    Call it from synchronous code only: from a thread that runs an event loop it would block
    that loop (await the coroutine there instead).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("loop_run() called from async code: await the coroutine instead")
    future = asyncio.run_coroutine_threadsafe(func(*args, **kwargs), loop_get())
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise


def _shutdown() -> None:
    """Close the layer's connections on the loop that owns them, then stop the loop."""
    loop = _loop
    if loop is None or _owner_pid != os.getpid() or not loop.is_running():
        return

    async def close_layer() -> None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        flush = getattr(getattr(layer, "_layers", {}).get(loop), "flush", None)
        if flush is not None:
            await flush()

    # Exiting anyway: if the flush fails, Redis drops the connection when the process ends.
    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(close_layer(), loop).result(2)
    loop.call_soon_threadsafe(loop.stop)


atexit.register(_shutdown)


def per_loop(new: Callable[[], T]) -> Callable[[], T]:
    """``of_loop = per_loop(new)``: ``of_loop()`` is the running event loop's own ``new()``
    (what holds futures, tasks or connections belongs to one loop). An ended loop's instance
    is dropped with it once another loop has asked for its own."""
    made: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()
    last: list[tuple[asyncio.AbstractEventLoop, T]] = []  # a server has one loop: no weakref

    def of_loop() -> T:
        loop = asyncio.get_running_loop()
        if last and last[0][0] is loop:
            return last[0][1]
        found = made.get(loop)
        if found is None:
            found = made[loop] = new()
        last[:] = [(loop, found)]
        return found

    return of_loop
