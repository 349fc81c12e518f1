"""The Lua scripts of presence (``lua/*.lua``), loaded once per process, run by SHA.

``EVALSHA`` first; on ``NOSCRIPT`` (a restarted or new Redis) the script body is sent once
with ``EVAL``, which also caches it on the server again.

Async calls (every connect, heartbeat and disconnect) are pipelined per event loop: the calls
made while the loop is busy go to Redis together, on one pooled connection, in one round
trip. A reconnect storm (thousands of disconnects and connects at once) otherwise queued
thousands of coroutines for the bus pool's connections, and those that waited past the
pool's timeout lost their presence update (docs/benchmarks.md, reconnect storm).
"""

import asyncio
import hashlib
import weakref
from pathlib import Path

from redis.exceptions import NoScriptError

from switchboard.redis import abus, bus

_DIR = Path(__file__).resolve().parent / "lua"
_SOURCES: dict[str, tuple[str, str]] = {}


def _source(name: str) -> tuple[str, str]:
    found = _SOURCES.get(name)
    if found is None:
        text = (_DIR / f"{name}.lua").read_text()
        found = _SOURCES[name] = (text, hashlib.sha1(text.encode()).hexdigest())
    return found


def script_run(name: str, *, keys: list[str], args: list) -> object:
    """Run script ``name`` on the bus (synchronous callers)."""
    text, sha = _source(name)
    client = bus()
    try:
        return client.evalsha(sha, len(keys), *keys, *args)
    except NoScriptError:
        return client.eval(text, len(keys), *keys, *args)


async def script_arun(name: str, *, keys: list[str], args: list) -> object:
    """Run script ``name`` on the bus (async callers), in this loop's next pipeline."""
    loop = asyncio.get_running_loop()
    batch = _batches.get(loop)
    if batch is None:
        batch = _batches[loop] = _ScriptBatch()
    return await batch.call(name, keys, args)


class _ScriptBatch:
    """Script calls of one event loop, sent to Redis together, one pipeline per round."""

    def __init__(self):
        self.pending: list[tuple[str, list[str], list, asyncio.Future]] = []
        self.task: asyncio.Task | None = None

    async def call(self, name: str, keys: list[str], args: list) -> object:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((name, keys, args, future))
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            pipe = abus().pipeline(transaction=False)
            for name, keys, args, _ in batch:
                pipe.evalsha(_source(name)[1], len(keys), *keys, *args)
            try:
                results = await pipe.execute(raise_on_error=False)
            except Exception as exc:  # the connection failed: every call of the round did
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (name, keys, args, future), result in zip(batch, results, strict=True):
                if isinstance(result, NoScriptError):
                    try:
                        result = await abus().eval(_source(name)[0], len(keys), *keys, *args)
                    except Exception as exc:
                        result = exc
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)


_batches: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _ScriptBatch]" = (
    weakref.WeakKeyDictionary()
)
