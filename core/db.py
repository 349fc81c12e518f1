"""The bridges from async code to PostgreSQL: the ORM in a thread, and a loop's own connection."""

import asyncio
import logging
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import psycopg
from channels.db import database_sync_to_async
from django.db import connection

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger(__name__)


def db(func: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Run ``func`` (sync ORM code) in the thread pool without blocking the event loop.

    ``thread_sensitive=False`` lets several queries run at once; with the default (one
    thread per process) every socket's database work queued behind every other's.
    """
    wrapped: Callable[P, Coroutine[Any, Any, R]] = database_sync_to_async(
        func, thread_sensitive=False
    )
    return wrapped


class LoopConnection:
    """One psycopg async connection to PostgreSQL, owned by one event loop, for a hot path.

    Why: the ORM runs in a thread, so each call from a socket's loop crosses to the thread
    pool and back, borrows a pooled connection (and checks it: one more round trip) and
    competes with the loop for the GIL. A hot path that speaks its own SQL (the message
    writer) keeps this connection instead and awaits PostgreSQL on the loop itself.

    It is opened on first use with the settings of Django's ``default`` database (one more
    connection per process, docs/deployment.md), and dropped when a statement on it fails
    for a connection-level reason, so the next use opens a fresh one. Only for PostgreSQL
    (``available()``).
    """

    def __init__(self) -> None:
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._opening: asyncio.Lock | None = None
        _all.add(self)

    @staticmethod
    def available() -> bool:
        return connection.vendor == "postgresql"

    async def get(self) -> "psycopg.AsyncConnection[Any]":
        """The open connection (opened now if there is none)."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._conn is None or self._conn.closed:
                self._conn = await self._open()
        return self._conn

    @staticmethod
    async def _open() -> "psycopg.AsyncConnection[Any]":
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)  # Django's is a sync cursor
        conn = await psycopg.AsyncConnection.connect(**params, autocommit=False)
        # As Django's own connections (init_connection_state): timestamps are read in the
        # time zone its loaders assume.
        await conn.execute("SELECT set_config('TimeZone', %s, false)", [connection.timezone_name])
        await conn.commit()
        return conn

    def discard(self) -> None:
        """Forget the connection (after an error that may have broken it); close it."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            conn.pgconn.finish()  # no await: also from a loop that is going away


_all: "weakref.WeakSet[LoopConnection]" = weakref.WeakSet()


def loop_connections_close() -> None:
    """Close every loop's connection now (a test's event loop ends; a process shuts down)."""
    for conn in list(_all):
        conn.discard()
