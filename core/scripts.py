"""The one loader of Redis Lua scripts: a ``Script`` per ``.lua`` file, loaded once per process.

Each script lives next to the code that calls it, with a header comment saying its keys,
arguments and what it guarantees; that module declares it once::

    TOUCH = Script(Path(__file__).with_name("lua") / "touch.lua")

and calls ``TOUCH.run(keys=..., args=...)`` (sync) or ``await TOUCH.arun(...)`` (async).
Scripts run by SHA (``EVALSHA``); on ``NOSCRIPT`` (a restarted or new Redis) the body is sent
once more, which caches it on the server again. Both go through redis-py's own ``Script``
objects, which also know how to queue a script in a pipeline.

A script runs on the bus server holding its keys (``core.redis``: a script's keys are all of
one subsystem, hence on one server); a script that takes its key prefix as an argument
instead of keys says which key routes it (``on=``).

Async calls without an explicit client are pipelined per event loop and server: the calls
made while the loop is busy go to that server together, on one pooled connection, in one
round trip. A reconnect storm (thousands of disconnects and connects at once) otherwise
queued thousands of coroutines for the bus pool's connections, and those that waited past
the pool's timeout lost their update (docs/benchmarks.md, reconnect storm).
"""

import asyncio
import hashlib
import weakref
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.commands.core import Script as SyncScript
from redis.exceptions import NoScriptError

from .redis import abus, abuses, bus, buses, shard_index, subsystem

Client = redis.Redis | redis.client.Pipeline
AsyncClient = aioredis.Redis | aioredis.client.Pipeline


class Script:
    """One Lua script file, run on the bus unless a client (or pipeline) is given."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.stem
        self.source = path.read_text()
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()
        self._sync: SyncScript | None = None
        self._async: AsyncScript | None = None

    def __repr__(self) -> str:
        return f"Script({self.name})"

    def run(
        self,
        *,
        keys: Sequence[str] = (),
        args: Sequence[Any] = (),
        client: Client | None = None,
        on: str | None = None,
    ) -> Any:
        """Run the script and return its result (a pipeline queues it instead); without
        ``client``, on the bus server of ``on`` (default: the first key)."""
        if client is None:
            route = _route(keys, on)
            if len(buses()) > 1:
                _one_server(keys, route)
            client = bus(route)
        if self._sync is None:
            self._sync = SyncScript(client, self.source)
        return self._sync(keys=list(keys), args=list(args), client=client)

    async def arun(
        self,
        *,
        keys: Sequence[str] = (),
        args: Sequence[Any] = (),
        client: AsyncClient | None = None,
        on: str | None = None,
    ) -> Any:
        """Async twin of ``run``; without ``client``, in this loop's next pipeline to the
        bus server of ``on`` (default: the first key)."""
        if client is None:
            route = _route(keys, on)
            shards = len(abuses())
            index = 0
            if shards > 1:
                _one_server(keys, route)
                index = shard_index(route, shards)
            loop = asyncio.get_running_loop()
            batches = _batches.get(loop)
            if batches is None:
                batches = _batches[loop] = {}
            batch = batches.get(index)
            if batch is None:
                batch = batches[index] = _ScriptBatch(route)
            return await batch.call(self, list(keys), list(args))
        if self._async is None:
            self._async = AsyncScript(client, self.source)
        return await self._async(keys=list(keys), args=list(args), client=client)


def _route(keys: Sequence[str], on: str | None) -> str:
    if on is not None:
        return on
    if not keys:
        raise ValueError("a script without keys needs on=<a key of its subsystem>")
    return keys[0]


def _one_server(keys: Sequence[str], route: str) -> None:
    """Refuse a script whose keys are of several subsystems: on a sharded bus they would be
    on several servers (Redis runs a script on one)."""
    wanted = subsystem(route)
    if any(subsystem(k) != wanted for k in keys):
        raise ValueError(f"a script's keys must be of one subsystem ({wanted}): {list(keys)}")


class _ScriptBatch:
    """Script calls of one event loop to one bus server (that of key ``route``), sent
    together, one pipeline per round."""

    def __init__(self, route: str) -> None:
        self.route = route
        self.pending: list[tuple[Script, list[str], list[Any], asyncio.Future[Any]]] = []
        self.task: asyncio.Future[None] | None = None

    async def call(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append((script, keys, args, future))
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            pipe = abus(self.route).pipeline(transaction=False)
            for script, keys, args, _ in batch:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            try:
                results = await pipe.execute(raise_on_error=False)
            except Exception as exc:  # the connection failed: every call of the round did
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (script, keys, args, future), result in zip(batch, results, strict=True):
                if isinstance(result, NoScriptError):
                    try:
                        # redis-py types a command for both clients: ``Awaitable[T] | T``.
                        reply = abus(self.route).eval(script.source, len(keys), *keys, *args)
                        result = await cast(Awaitable[Any], reply)
                    except Exception as exc:
                        result = exc
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)


_batches: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, _ScriptBatch]]" = (
    weakref.WeakKeyDictionary()
)
