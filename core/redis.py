"""Clients for the bus Redis (never the cache: that one goes through django-redis).

Every pool is a ``BlockingConnectionPool``: under load a caller waits up to
``REDIS_POOL_TIMEOUT`` for a free connection instead of failing with
``MaxConnectionsError``. Async pools are bound to the event loop that created them, so
there is one per running loop (Celery and tests run several loops over a process' life).
"""

import asyncio
import threading
import weakref
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

_sync_client: redis.Redis | None = None
_sync_lock = threading.Lock()
_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis]" = (
    weakref.WeakKeyDictionary()
)


def key(*parts: object) -> str:
    """Return a bus key under this deployment's prefix."""
    return ":".join([settings.REDIS_KEY_PREFIX, *(str(p) for p in parts)])


def _pool_kwargs() -> dict[str, Any]:
    return {
        "max_connections": settings.REDIS_POOL_MAX_CONNECTIONS,
        "timeout": settings.REDIS_POOL_TIMEOUT,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        "health_check_interval": 30,
    }


def bus() -> redis.Redis:
    """Return the process-wide synchronous bus client."""
    global _sync_client
    if _sync_client is None:
        with _sync_lock:
            if _sync_client is None:
                pool = redis.BlockingConnectionPool.from_url(
                    settings.REDIS_URL, decode_responses=True, **_pool_kwargs()
                )
                _sync_client = redis.Redis(connection_pool=pool)
    return _sync_client


def abus() -> aioredis.Redis:
    """Return the bus client bound to the running event loop."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL, decode_responses=True, **_pool_kwargs()
        )
        client = aioredis.Redis(connection_pool=pool)
        _async_clients[loop] = client
    return client
