"""Nobody is ever in two matches: 1,000 seekers at once against the real Redis."""

import asyncio
import random
import uuid

import pytest
import redis
import redis.asyncio as aioredis
from django.conf import settings

from matching import pool

SEEKERS = 1000
NOW = 1_700_000_000_000
INTERESTS = [f"i{n}" for n in range(40)]
WEIGHTS = [1 / (n + 1) for n in range(40)]  # a few popular, a long tail


@pytest.fixture
def prefix():
    name = f"{settings.REDIS_KEY_PREFIX}:mmc{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=f"{name}:*", count=1000):
        client.delete(key)
    client.close()


def _profile(rng: random.Random) -> dict:
    picks = {rng.choices(INTERESTS, WEIGHTS)[0] for _ in range(rng.randint(0, 5))}
    return {
        "language": rng.choice(["en", "en", "en", "es"]),
        "region": rng.choice(["", "europe", "asia", "africa"]),
        "region_mode": rng.choice(["prefer", "prefer", "require", "any"]),
        "interests": sorted(picks),
    }


def _check_invariants(decisions: list[tuple[int, pool.Decision]], waiting: set[int]):
    pairs = [(uid, d.partner_id) for uid, d in decisions if d.status == "matched"]
    seen: list[int] = [u for pair in pairs for u in pair]
    assert len(seen) == len(set(seen)), "someone is in two matches"
    assert all(a != b for a, b in pairs)
    assert not set(seen) & waiting, "a matched user is still in the pool"
    assert len(seen) + len(waiting) == SEEKERS
    return pairs


async def test_no_double_match_with_1000_concurrent_seekers(prefix):
    rng = random.Random(5)
    profiles = {uid: _profile(rng) for uid in range(1, SEEKERS + 1)}
    config = pool.PoolConfig.from_settings(relax_ms=(15_000, 30_000), trending=False)
    sync = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    for uid in profiles:
        pool.avoid_write(user_id=uid, until_by_user={}, complete=True, client=sync,
                         prefix=prefix, config=config)  # fmt: skip
    # Several clients, each with its own connections: decisions really run interleaved.
    clients = [
        aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                settings.REDIS_URL, decode_responses=True, max_connections=16
            )
        )
        for _ in range(4)
    ]

    async def enter(uid: int):
        p = profiles[uid]
        op, now, *rest = pool._enter_args(
            uid, p["language"], p["region"], p["region_mode"], p["interests"], "", True, NOW
        )
        raw = await pool.MATCH_SCRIPT.arun(
            args=pool._args(op, now, config, prefix, *rest), client=clients[uid % 4]
        )
        return uid, pool._decision(raw)

    async def decide(uid: int, at: int):
        raw = await pool.MATCH_SCRIPT.arun(
            args=pool._args("decide", at, config, prefix, str(uid)), client=clients[uid % 4]
        )
        return uid, pool._decision(raw)

    order = list(profiles)
    rng.shuffle(order)
    first = await asyncio.gather(*(enter(uid) for uid in order))
    waiting = {int(u) for u in sync.zrange(f"{prefix}:deadline", 0, -1)}
    pairs = _check_invariants(first, waiting)
    assert len(pairs) > 200  # most people found someone at once

    # Everyone left waiting relaxes at the same moment and decides concurrently again.
    later = NOW + 31_000
    second = await asyncio.gather(*(decide(uid, later) for uid in sorted(waiting)))
    still = {int(u) for u in sync.zrange(f"{prefix}:deadline", 0, -1)}
    all_decisions = [d for d in first if d[1].status == "matched"] + list(second)
    more = _check_invariants(all_decisions, still)
    assert len(more) > len(pairs)
    for uid, partner in more:  # both are marked as matched, neither has a ticket
        assert sync.exists(f"{prefix}:cur:{uid}") and sync.exists(f"{prefix}:cur:{partner}")
        assert not sync.exists(f"{prefix}:t:{uid}") and not sync.exists(f"{prefix}:t:{partner}")
    for client in clients:
        await client.aclose()
    sync.close()
