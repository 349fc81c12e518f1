"""The one bridge from async code to the ORM."""

from channels.db import database_sync_to_async


def db(func):
    """Run ``func`` (sync ORM code) in the thread pool without blocking the event loop.

    ``thread_sensitive=False`` lets several queries run at once; with the default (one
    thread per process) every socket's database work queued behind every other's.
    """
    return database_sync_to_async(func, thread_sensitive=False)
