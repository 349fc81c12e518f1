"""The bridges from async code to PostgreSQL: the ORM in a thread, and a loop's own connection."""

import asyncio
import functools
import logging
import weakref
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import psycopg
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections

from core.loop import per_loop

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger(__name__)


def db(func: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Run ``func`` (sync ORM code) in the thread pool without blocking the event loop.

    ``thread_sensitive=False`` lets several queries run at once; with the default (one
    thread per process) every socket's database work queued behind every other's. The
    wrapper of a function is built once (building one inspects the function: it showed in
    the connection-opening profile, where every socket wrapped the same few functions).
    """
    wrapped: Callable[P, Coroutine[Any, Any, R]] = _wrapper(func)
    return wrapped


@functools.lru_cache(maxsize=1024)
def _wrapper(func: Callable[..., Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
    wrapped: Callable[..., Coroutine[Any, Any, Any]] = database_sync_to_async(
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

    def __init__(self, *, autocommit: bool = False, generic_plans: bool = False) -> None:
        self.autocommit = autocommit
        # PostgreSQL plans a prepared statement again at every execution (a custom plan)
        # while its generic plan's estimate looks dearer: for the writer's batch statement it
        # always did, 1.2-3.5 ms of planning per batch, more than running it. With
        # ``generic_plans`` the connection keeps the one generic plan (``plan_cache_mode``)
        # and that plan never scans a whole table (``enable_seqscan`` off: a plan made while
        # the tables were small, a new deployment's, would have kept scanning them as they
        # grew). For statements whose every step has an index. Both are session settings, which
        # a transaction pooler would leave on whichever server connection ran the SET and not
        # bring to the next transaction (DB_POOLER): off behind one, with their prepared
        # statements, and each batch is planned again there.
        self.generic_plans = generic_plans and not settings.DB_POOLER
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._opening: asyncio.Lock | None = None
        # Idle cursors of ``cursors_of`` (``loop_fetch``); another connection's are dropped.
        self.cursors: list[psycopg.AsyncCursor[Any]] = []
        self.cursors_of: psycopg.AsyncConnection[Any] | None = None
        _all.add(self)

    @staticmethod
    def available() -> bool:
        """Whether the database is PostgreSQL, read from the settings.

        Not ``connection.vendor``: in a consumer's task, ``django.db.connection`` makes a
        ``DatabaseWrapper`` of that task's own (Django's connections are per async context),
        and it lived as long as the socket: 1.2 KB of every held connection
        (the connections scenario, docs/benchmarks.md).
        """
        return _is_postgresql(connections.settings[DEFAULT_DB_ALIAS]["ENGINE"])

    async def get(self) -> "psycopg.AsyncConnection[Any]":
        """The open connection (opened now if there is none)."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._conn is None or self._conn.closed:
                self._conn = await self._open(self.autocommit, self.generic_plans)
        return self._conn

    @staticmethod
    async def _open(autocommit: bool, generic_plans: bool) -> "psycopg.AsyncConnection[Any]":
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)  # Django's is a sync cursor
        # Its statements are few and always the same: prepared on first use (parsed once;
        # planned once only with ``generic_plans``, above). Off behind a pooler that cannot
        # keep prepared statements (DB_LOOP_PREPARE, docs/deployment.md).
        params["prepare_threshold"] = 0 if settings.DB_LOOP_PREPARE else None
        conn = await psycopg.AsyncConnection.connect(**params, autocommit=autocommit)
        # As Django's own connections (init_connection_state): timestamps are read in the
        # time zone its loaders assume. A session setting that survives a transaction pooler:
        # PgBouncer tracks TimeZone per client and sets it on each server connection it lends.
        await conn.execute("SELECT set_config('TimeZone', %s, false)", [connection.timezone_name])
        if generic_plans:
            await conn.execute(
                "SELECT set_config('plan_cache_mode', 'force_generic_plan', false), "
                "set_config('enable_seqscan', 'off', false)"
            )
        if not autocommit:
            await conn.commit()
        return conn

    def discard(self) -> None:
        """Forget the connection (after an error that may have broken it); close it."""
        conn, self._conn = self._conn, None
        self.cursors, self.cursors_of = [], None
        if conn is not None and not conn.closed:
            conn.pgconn.finish()  # no await: also from a loop that is going away


@functools.lru_cache(maxsize=4)
def _is_postgresql(engine: str) -> bool:
    return engine.endswith("postgresql")


LOOP_CURSORS_KEPT = 8
_all: "weakref.WeakSet[LoopConnection]" = weakref.WeakSet()


def _reader_new() -> LoopConnection:
    return LoopConnection(autocommit=True)


_reader = per_loop(_reader_new)


async def loop_fetch(sql: str, params: Mapping[str, Any] | Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run one statement on this event loop's read connection; return its rows.

    PostgreSQL only (``LoopConnection.available()``): the reads of a socket's opening
    (credentials, memberships, resume), written out as SQL, awaited on the loop instead of
    a thread hop and the ORM's query building each. The statements of a loop take turns on
    its one connection (autocommit: each is its own snapshot and transaction, so a write
    here is one idempotent statement). One that fails because the idle connection broke
    (PostgreSQL restarted) is tried once more on a new one.
    """
    reader = _reader()
    for attempt in (1, 2):
        pg = await reader.get()
        # A cursor of this connection no statement is using: one per statement in flight,
        # kept (psycopg builds each cursor's adapters map afresh: 5 % of a server's time
        # in the reconnect storm, when every read made one).
        free = reader.cursors if reader.cursors_of is pg else []
        cursor = free.pop() if free else pg.cursor()
        try:
            await cursor.execute(sql, params)
            rows = await cursor.fetchall()
        except psycopg.OperationalError:
            broken = pg.closed or pg.broken
            reader.discard()
            if not broken or attempt == 2:
                raise
            continue
        if reader.cursors_of is not pg:
            reader.cursors, reader.cursors_of = [], pg
        if len(reader.cursors) < LOOP_CURSORS_KEPT:
            reader.cursors.append(cursor)
        return rows
    raise AssertionError("unreachable")


def loop_connections_close() -> None:
    """Close every loop's connection now (a test's event loop ends; a process shuts down)."""
    for conn in list(_all):
        conn.discard()
