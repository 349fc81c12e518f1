"""Nobody is ever in two matches (1,000 seekers at once against the real Redis), and the
races a second tab or a reconnect hits end as the client expects."""

import asyncio
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.utils import timezone

from core.errors import Conflict
from core.redis import bus
from matching import pool
from matching.models import Match

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


# -- races a second tab or a reconnect hits, through the services on PostgreSQL and Redis --


def _race(*calls):
    """Run ``calls`` (no-argument functions) at the same moment in threads; return results
    (or the exception each raised)."""
    from django.db import connection

    barrier = threading.Barrier(len(calls))

    def run(call):
        try:
            barrier.wait()
            return call()
        except Exception as exc:  # the race's outcome, compared below
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(len(calls)) as executor:
        return [f.result(timeout=60) for f in [executor.submit(run, c) for c in calls]]


@pytest.fixture
def seekers(make_user, settings):
    settings.LIMITS = {**settings.LIMITS, "MATCH_RATE_PER_MINUTE": 1000}

    def make(n: int = 2):
        return [make_user(interests=["chess"], region="europe") for _ in range(n)]

    return make


@pytest.mark.django_db(transaction=True)
def test_a_conflict_always_names_the_match_even_while_it_is_being_recorded(seekers):
    from matching import services

    # A few rounds of the real race: which side wins is up to the threads, and the outcome
    # that needs the wait (the row not written yet) is made certain by the next test.
    for _ in range(5):
        ann, bob = seekers()
        services.match_enter(user_id=ann.pk)  # Ann waits; a second tab of hers enters again
        second_tab, seeker = _race(
            lambda: services.match_enter(user_id=ann.pk),  # noqa: B023
            lambda: services.match_enter(user_id=bob.pk),  # noqa: B023
        )
        assert not isinstance(seeker, Exception), seeker
        match_id = Match.objects.get(user_b=ann).pk
        if isinstance(second_tab, Exception):
            assert isinstance(second_tab, Conflict), second_tab
            assert second_tab.extra == {"match_id": match_id}
        else:  # the second tab's enter came first: it refreshed her ticket, then Bob took her
            assert second_tab["status"] in ("waiting", "matched")


@pytest.mark.django_db(transaction=True)
def test_a_conflict_waits_for_the_row_of_a_match_just_decided(seekers):
    from matching import services

    ann, bob = seekers()
    # The pool has decided (Ann's marker is "0") but the match row is not written yet.
    bus().set(pool.cur_key(ann.pk), "0", px=30_000)
    recorded: list[int] = []

    def record_soon():
        time.sleep(0.3)
        recorded.append(services.match_record(seeker_id=bob.pk, partner_id=ann.pk, shared=[]).pk)

    second_tab, _ = _race(lambda: services.match_enter(user_id=ann.pk), record_soon)
    assert isinstance(second_tab, Conflict)
    assert second_tab.extra == {"match_id": recorded[0]}


@pytest.mark.django_db(transaction=True)
def test_a_marker_left_by_an_ended_match_does_not_block_entering(seekers):
    from matching import services

    ann, bob = seekers()
    match = services.match_record(seeker_id=bob.pk, partner_id=ann.pk, shared=[])
    Match.objects.filter(pk=match.pk).update(ended_at=timezone.now(), end_reason="skip")
    assert bus().get(pool.cur_key(ann.pk)) == str(match.pk)  # its process died before the DEL
    assert services.match_enter(user_id=ann.pk)["status"] == "waiting"


@pytest.mark.django_db(transaction=True)
def test_when_both_skip_at_once_both_are_requeued(seekers):
    from matching import services

    for _ in range(15):
        ann, bob = seekers()
        services.match_enter(user_id=ann.pk)
        match_id = services.match_enter(user_id=bob.pk)["match_id"]
        replies = _race(
            *(
                lambda uid=uid, mid=match_id: services.match_skip(
                    user_id=uid, match_id=mid, requeue=True
                )
                for uid in (ann.pk, bob.pk)
            )
        )
        for reply in replies:
            assert not isinstance(reply, Exception), reply
            assert reply["ended"] == match_id
            assert reply["enter"]["status"] == "waiting"  # recent partners: not each other
        match = Match.objects.get(pk=match_id)
        assert match.end_reason == "skip" and match.ended_by_id in (ann.pk, bob.pk)
        assert pool.pool_size() >= 2
        services.match_cancel(user_id=ann.pk)
        services.match_cancel(user_id=bob.pk)
