"""``live.locks``: one owner at a time; only the owner releases; a dead owner's lock expires."""

import time

from live.locks import RedisLock, lock_hold, locked
from switchboard.redis import bus, key


def _name(suffix: str) -> str:
    return key("test", "lock", suffix, time.monotonic_ns())


def test_a_held_lock_is_not_taken_twice():
    name = _name("twice")
    first, second = RedisLock(name, ttl=30), RedisLock(name, ttl=30)
    assert first.acquire()
    assert not second.acquire()
    assert first.release()
    assert second.acquire()


def test_only_the_owner_releases():
    name = _name("owner")
    owner, other = RedisLock(name, ttl=30), RedisLock(name, ttl=30)
    assert owner.acquire()
    assert not other.release()
    assert bus().get(name) == owner.token


def test_an_expired_owner_cannot_release_its_successors_lock():
    name = _name("expired")
    slow = RedisLock(name, ttl=0.2)
    assert slow.acquire()
    successor = RedisLock(name, ttl=30)
    assert successor.acquire(wait=5)  # after the slow owner's TTL
    assert not slow.release()
    assert successor.owned()


def test_lock_hold_yields_false_when_taken():
    name = _name("hold")
    with lock_hold(name, ttl=30) as first, lock_hold(name, ttl=30) as second:
        assert first and not second
    assert bus().get(name) is None


def test_locked_skips_a_concurrent_call():
    calls = []

    @locked(lambda *, n: f"test-locked-{n}", ttl=30)
    def job(*, n: int) -> str:
        calls.append(n)
        return inner(n=n)

    @locked(lambda *, n: f"test-locked-{n}", ttl=30)
    def inner(*, n: int) -> str:
        return "inner ran"

    assert job(n=time.monotonic_ns()) is None  # inner could not take the held lock
    assert len(calls) == 1
