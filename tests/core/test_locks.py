"""``core.locks``: redis-py's Lock, one owner at a time; only the owner releases; a dead owner's
lock expires; ``held_by`` recognises a known token."""

import time

from core.locks import Lock
from core.redis import key


def _name(suffix: str) -> str:
    return key("test", "lock", suffix, time.monotonic_ns())


def test_a_held_lock_is_not_taken_twice():
    name = _name("twice")
    first, second = Lock(name, ttl=30), Lock(name, ttl=30)
    assert first.acquire()
    assert not second.acquire()
    assert first.release_if_owned()
    assert second.acquire()


def test_only_the_owner_releases():
    name = _name("owner")
    owner, other = Lock(name, ttl=30), Lock(name, ttl=30)
    assert owner.acquire(token="mine")
    assert not other.release_if_owned()
    assert owner.held_by("mine")
    assert owner.owned()


def test_an_expired_owner_cannot_release_its_successors_lock():
    name = _name("expired")
    slow = Lock(name, ttl=0.2)
    assert slow.acquire()
    successor = Lock(name, ttl=30)
    assert successor.acquire(blocking=True, blocking_timeout=5)  # after the slow owner's TTL
    assert not slow.release_if_owned()
    assert successor.owned()


def test_held_by_knows_a_token_it_did_not_take_here():
    name = _name("token")
    assert Lock(name, ttl=30).acquire(token="task-1")
    retry = Lock(name, ttl=30)  # a retry of the same task, in another process
    assert not retry.acquire(token="task-1")
    assert retry.held_by("task-1")
    assert not retry.held_by("task-2")
