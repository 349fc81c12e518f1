"""Clients for the bus Redis (never the cache: that one goes through django-redis).

The bus may be several servers (``REDIS_URL`` lists them, ``core.redis_urls``), each direct
or a Sentinel-managed primary. **The key-to-server rule**: a key ``<prefix>:<subsystem>:...``
(built by ``key()``) lives on shard ``crc32(subsystem) * N // 4096`` of the N listed (the
formula channels-redis applies to a group's name). So every key of one subsystem (``mm``,
``presence``, ``rl``, ``lock`` ...) is on one server, and a Lua script, whose keys are all
of its subsystem, runs where they are; ``bus(name)`` / ``abus(name)`` return the client of
the server holding ``name``. With one URL every key routes to it without hashing.

Every pool is a ``BlockingConnectionPool`` (for a Sentinel master, the same over redis-py's
``SentinelConnectionPool``): under load a caller waits up to ``REDIS_POOL_TIMEOUT`` for a
free connection instead of failing with ``MaxConnectionsError``. Async pools are bound to
the event loop that created them, so there is one list of clients per running loop (Celery
and tests run several loops over a process' life).
"""

import asyncio
import binascii
import threading
import weakref
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel
from django.conf import settings

from .redis_urls import Server, parse

# The process' clients, one per shard in REDIS_URL's order (None until first used; tests
# reset it after pointing REDIS_URL elsewhere).
_sync_client: list[redis.Redis] | None = None
_sync_lock = threading.Lock()
_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[aioredis.Redis]]" = (
    weakref.WeakKeyDictionary()
)
_subsystem_shard: dict[tuple[str, int], int] = {}


def key(*parts: object) -> str:
    """Return a bus key under this deployment's prefix."""
    return ":".join([settings.REDIS_KEY_PREFIX, *(str(p) for p in parts)])


def subsystem(name: str) -> str:
    """Return the part of a bus key that chooses its server (the one after the prefix)."""
    prefix = settings.REDIS_KEY_PREFIX
    if not name.startswith(prefix + ":"):
        raise ValueError(f"{name!r} is not a bus key (core.redis.key): it has no server")
    return name[len(prefix) + 1 :].split(":", 1)[0]


def shard_index(name: str, shards: int) -> int:
    """Return the position, among ``shards`` servers, of the one holding key ``name``."""
    if shards == 1:
        return 0
    part = subsystem(name)
    found = _subsystem_shard.get((part, shards))
    if found is None:
        found = (binascii.crc32(part.encode()) & 0xFFF) * shards // 4096
        _subsystem_shard[(part, shards)] = found
    return found


def _pool_kwargs() -> dict[str, Any]:
    return {
        "max_connections": settings.REDIS_POOL_MAX_CONNECTIONS,
        "timeout": settings.REDIS_POOL_TIMEOUT,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        "health_check_interval": 30,
        "decode_responses": True,
    }


# redis-py ships no blocking pool for a Sentinel master: this one finds the master through
# Sentinel (and drops connections to a demoted one) and waits for a free connection.
class _BlockingSentinelPool(redis.sentinel.SentinelConnectionPool, redis.BlockingConnectionPool):
    def disconnect(self, inuse_connections: bool = True) -> None:
        # Sentinel asks for the idle connections only when the master moved; the blocking
        # pool closes all it made: those in use point at the old master anyway.
        redis.BlockingConnectionPool.disconnect(self)  # type: ignore[no-untyped-call]


class _AsyncBlockingSentinelPool(
    aiosentinel.SentinelConnectionPool, aioredis.BlockingConnectionPool
):
    pass


def _sentinel_kwargs() -> dict[str, Any]:
    return {"socket_connect_timeout": 1, "socket_timeout": 1}


def _server_kwargs(server: Server) -> dict[str, Any]:
    return {"db": server.db, "username": server.username, "password": server.password}


def _sync_for(server: Server) -> redis.Redis:
    if not server.is_sentinel:
        pool = redis.BlockingConnectionPool.from_url(server.url, **_pool_kwargs())
        return redis.Redis(connection_pool=pool)
    # redis-py's sentinel module is untyped: ``master_for`` returns a ``redis.Redis``.
    manager = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        list(server.sentinels), sentinel_kwargs=_sentinel_kwargs()
    )
    client: redis.Redis = manager.master_for(  # type: ignore[no-untyped-call]
        server.master_name,
        connection_pool_class=_BlockingSentinelPool,
        **_server_kwargs(server),
        **_pool_kwargs(),
    )
    return client


def _async_for(server: Server) -> aioredis.Redis:
    if not server.is_sentinel:
        pool = aioredis.BlockingConnectionPool.from_url(server.url, **_pool_kwargs())
        return aioredis.Redis(connection_pool=pool)
    manager = aiosentinel.Sentinel(  # type: ignore[no-untyped-call]
        list(server.sentinels), sentinel_kwargs=_sentinel_kwargs()
    )
    client: aioredis.Redis = manager.master_for(
        server.master_name,
        connection_pool_class=_AsyncBlockingSentinelPool,
        **_server_kwargs(server),
        **_pool_kwargs(),
    )
    return client


def buses() -> list[redis.Redis]:
    """Return the process-wide synchronous client of every bus server, in ``REDIS_URL``'s order."""
    global _sync_client
    clients = _sync_client
    if clients is None:
        with _sync_lock:
            clients = _sync_client
            if clients is None:
                clients = _sync_client = [_sync_for(s) for s in parse(settings.REDIS_URL)]
    return clients


def abuses() -> list[aioredis.Redis]:
    """Return the client of every bus server bound to the running event loop."""
    loop = asyncio.get_running_loop()
    clients = _async_clients.get(loop)
    if clients is None:
        clients = _async_clients[loop] = [_async_for(s) for s in parse(settings.REDIS_URL)]
    return clients


def _routed(clients: list[Any], name: str | None) -> Any:
    if name is None:
        raise ValueError(f"the bus has {len(clients)} servers: say which key (bus(name))")
    return clients[shard_index(name, len(clients))]


# bus() / abus() are on the hot path: with one server they cost what they did before
# shards (a lookup), hence no helper call until there are several.
def bus(name: str | None = None) -> redis.Redis:
    """Return the synchronous client of the server holding key ``name`` (a pipeline or a
    script sent through it must touch only keys of that server: one subsystem's).

    Without ``name`` only while the bus is one server (tests of one subsystem); the
    project's code always names the key."""
    clients = _sync_client or buses()
    if len(clients) == 1:
        return clients[0]
    client: redis.Redis = _routed(clients, name)
    return client


def abus(name: str | None = None) -> aioredis.Redis:
    """Async twin of ``bus``: the client bound to the running event loop."""
    clients = _async_clients.get(asyncio.get_running_loop()) or abuses()
    if len(clients) == 1:
        return clients[0]
    client: aioredis.Redis = _routed(clients, name)
    return client
