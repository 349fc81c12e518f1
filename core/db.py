"""The one bridge from async code to the ORM."""

from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from channels.db import database_sync_to_async

P = ParamSpec("P")
R = TypeVar("R")


def db(func: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Run ``func`` (sync ORM code) in the thread pool without blocking the event loop.

    ``thread_sensitive=False`` lets several queries run at once; with the default (one
    thread per process) every socket's database work queued behind every other's.
    """
    wrapped: Callable[P, Coroutine[Any, Any, R]] = database_sync_to_async(
        func, thread_sensitive=False
    )
    return wrapped
