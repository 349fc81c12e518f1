"""Redis locks: redis-py's own ``Lock`` (token, ``SET NX PX``, compare-and-delete in Lua).

One addition, ``held_by``: a caller that already knows the token a lock should carry (a
Celery task id for the period claim of ``core.periodic``) can ask whether the lock is
that token's without having taken it in this process. The caller passes the client: the
bus for periodic tasks, the cache Redis for the cache's stampede locks (``core.cache``).
"""

from typing import Any

import redis
import redis.lock
from redis.exceptions import LockError

from .redis import bus


class Lock(redis.lock.Lock):
    """A lock named ``name`` (a full key) expiring ``ttl`` seconds after it is taken."""

    def __init__(
        self, name: str, *, ttl: float, client: redis.Redis | None = None, **kwargs: Any
    ) -> None:
        # thread_local=False: a lock object is used by one caller; a token kept per thread
        # would hide it from the thread that releases it (redis-py's own advice).
        super().__init__(
            client if client is not None else bus(name),
            name,
            timeout=ttl,
            blocking=False,
            thread_local=False,
            **kwargs,
        )

    def held_by(self, token: str) -> bool:
        """Return whether the lock exists and carries ``token``."""
        stored = self.redis.get(self.name)
        if isinstance(stored, bytes):
            stored = stored.decode()
        return bool(stored == token)

    def release_if_owned(self) -> bool:
        """Give the lock back if it is still ours; return whether it was (no exception)."""
        try:
            self.release()
        except LockError:  # expired, or someone else's by now
            return False
        return True
