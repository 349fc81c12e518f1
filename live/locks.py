"""A Redis lock with an owner: ``SET key token NX PX ttl`` to take it, compare-and-delete
(``lock_release.lua``) to give it back.

The TTL bounds how long a crashed owner can block others; the token makes sure an owner
whose lock already expired cannot release the lock someone else took since. Used for
periodic tasks (``live.periodic``) on the bus Redis and for stampede protection
(``live.cache``) on the cache Redis: the caller passes the client and a fully built key.
"""

import functools
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from switchboard.redis import bus, key

logger = logging.getLogger(__name__)

_RELEASE_SOURCE = (Path(__file__).with_name("lock_release.lua")).read_text()
_release_script = None


def _release(client: redis.Redis, name: str, token: str) -> bool:
    global _release_script
    if _release_script is None:
        # A Script is only a (source, sha) pair; each call runs on the client it is given.
        _release_script = client.register_script(_RELEASE_SOURCE)
    return bool(_release_script(keys=[name], args=[token], client=client))


class RedisLock:
    """A lock named ``name`` (a full Redis key) that expires after ``ttl`` seconds."""

    def __init__(
        self,
        name: str,
        *,
        ttl: float,
        client: redis.Redis | None = None,
        token: str | None = None,
    ):
        self.name = name
        self.ttl_ms = max(1, int(ttl * 1000))
        self.client = client if client is not None else bus()
        self.token = token or secrets.token_hex(16)
        self.held = False

    def acquire(self, *, wait: float = 0.0, poll: float = 0.05) -> bool:
        """Take the lock, retrying for up to ``wait`` seconds; return whether we hold it."""
        deadline = time.monotonic() + wait
        while True:
            if self.client.set(self.name, self.token, nx=True, px=self.ttl_ms):
                self.held = True
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)

    def owned(self) -> bool:
        """Return whether the lock exists and carries our token."""
        value = self.client.get(self.name)
        if isinstance(value, bytes):
            value = value.decode()
        return value == self.token

    def release(self) -> bool:
        """Give the lock back if it is still ours; return whether it was."""
        self.held = False
        return _release(self.client, self.name, self.token)


@contextmanager
def lock_hold(
    name: str, *, ttl: float, wait: float = 0.0, client: redis.Redis | None = None
) -> Iterator[bool]:
    """Hold the lock for the ``with`` block; yields False (and runs nothing for us) if taken."""
    lock = RedisLock(name, ttl=ttl, client=client)
    acquired = lock.acquire(wait=wait)
    try:
        yield acquired
    finally:
        if acquired and not lock.release():
            logger.warning("lock=%s expired before its owner finished (ttl too short)", name)


def locked(name: str | Callable[..., str], *, ttl: float, wait: float = 0.0):
    """Decorate ``func`` so at most one caller runs it at a time (bus Redis, ``lock:`` keys).

    ``name`` is a string or a function of the call's arguments. A caller that cannot take
    the lock within ``wait`` seconds skips the call and gets None.
    """

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            lock_name = name(*args, **kwargs) if callable(name) else name
            with lock_hold(key("lock", lock_name), ttl=ttl, wait=wait) as acquired:
                if not acquired:
                    logger.info("lock=%s busy: %s skipped", lock_name, func.__qualname__)
                    return None
                return func(*args, **kwargs)

        return wrapper

    return decorate
