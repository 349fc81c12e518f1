"""Calls coalesced into batches: what is queued while one batch is on its way is the next.

The message writer's pattern (``conversations.writer``), for the places where many
coroutines of one process each want a small round trip at the same moment: the channel
layer's subscriptions and publishes (``core.layer``), ``Profile.last_seen`` writes of
sockets opening together (``presence.services``). The first caller's batch starts at once
(nothing waits for company); callers that come while it is on its way form the next one;
each returns once the batch holding its items is done, or raises that batch's error.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Batches(Generic[T]):
    """``await batches.add(items)``: ``run(batch)`` does the items of many callers at once."""

    def __init__(self, run: Callable[[list[T]], Awaitable[None]]) -> None:
        self._run_batch = run
        self._items: list[T] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None

    async def add(self, items: Iterable[T]) -> None:
        future = asyncio.get_running_loop().create_future()
        self._items.extend(items)
        self._waiters.append(future)
        if self._task is None:
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
