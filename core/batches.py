"""Calls coalesced into batches: what is queued while one batch is on its way is the next.

The message writer's pattern (``conversations.writer``), for the places where many
coroutines of one process each want a small round trip at the same moment: the channel
layer's subscriptions and publishes (``core.layer``), ``Profile.last_seen`` writes of
sockets opening together (``presence.services``). The first caller's batch starts at once
(nothing waits for company); callers that come while it is on its way form the next one;
each returns once the batch holding its items is done, or raises that batch's error.

``Reads`` is the same for look-ups: the reads of a socket's opening (its token's user, its
memberships) that many sockets opening together make are one statement per batch. Each event
loop keeps its own instances (``core.loop.per_loop``).
"""

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Batches(Generic[T]):
    """``await batches.add(items)``: ``run(batch)`` does the items of many callers at once.

    ``inline``: a caller that finds nothing on its way runs its batch itself, in its own
    task, instead of in a task started for it: one pass of the event loop sooner (the
    channel layer's publishes: the message path's hop to Redis). Callers that come
    meanwhile are the next batch, run by a task as usual once it is done. Only for a
    ``run`` that may be cancelled with its caller (the caller's own items are then what is
    left undone).
    """

    def __init__(self, run: Callable[[list[T]], Awaitable[None]], *, inline: bool = False) -> None:
        self._run_batch = run
        self._inline = inline
        self._inline_running = False
        self._items: list[T] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None

    async def add(self, items: Iterable[T]) -> None:
        if self._inline and self._task is None and not self._inline_running:
            self._inline_running = True
            try:
                await self._run_batch(list(items))
            finally:
                self._inline_running = False
                if self._waiters:  # came while this batch ran: the next batch
                    self._task = asyncio.ensure_future(self._run())
            return
        future = asyncio.get_running_loop().create_future()
        self._items.extend(items)
        self._waiters.append(future)
        if self._task is None and not self._inline_running:
            self._task = asyncio.ensure_future(self._run())
        await future

    async def _run(self) -> None:
        try:
            while self._waiters:
                items, self._items = self._items, []
                waiters, self._waiters = self._waiters, []
                try:
                    await self._run_batch(items)
                except Exception as exc:  # every caller of the batch hears it
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_exception(exc)
                    continue
                for waiter in waiters:
                    if not waiter.done():  # a caller cancelled meanwhile stopped waiting
                        waiter.set_result(None)
        finally:
            self._task = None


class Reads(Generic[K, V]):
    """``await reads.get(key)``: ``read(keys)`` looks up the keys of many callers at once.

    ``read`` returns what it found by key; a key it did not find is ``missing``. A value is
    shared by every caller of the batch that asked for the same key: read it, never change it.
    """

    def __init__(self, read: Callable[[list[K]], Awaitable[Mapping[K, V]]], missing: V) -> None:
        async def run(items: list[tuple[K, list[V]]]) -> None:
            found = await read(list(dict.fromkeys(k for k, _ in items)))
            for k, slot in items:
                slot.append(found.get(k, missing))

        self._batches: Batches[tuple[K, list[V]]] = Batches(run)

    async def get(self, key: K) -> V:
        slot: list[V] = []
        await self._batches.add([(key, slot)])
        return slot[0]
