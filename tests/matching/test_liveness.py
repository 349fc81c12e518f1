"""Whether match members still have a Meet connection (matching/liveness.lua), with the
time passed in: vouching, a close, a killed process (no close at all), a reconnect."""

import pytest
from channels.db import database_sync_to_async

from core.redis import bus
from matching import liveness, pool

T0 = 1_700_000_000_000


@pytest.fixture
def grace(settings):
    settings.LIMITS = {**settings.LIMITS, "MEET_PARTNER_GRACE_SECONDS": 5.0}
    return 5000


def _in_match(*user_ids):
    for uid in user_ids:
        bus().set(pool.cur_key(uid), "7", ex=60)


def _gone(now):
    return sorted(liveness.members_gone(limit=100, now=now))


async def test_a_member_is_gone_one_grace_after_the_last_close_not_before(grace):
    await database_sync_to_async(_in_match)(1, 2)
    await liveness.aconns_refresh(conns=[(1, "a"), (1, "b"), (2, "c")], now=T0)
    assert not await liveness.aconn_leave(user_id=1, channel="a", now=T0 + 1000)  # "b" is open
    await liveness.aconns_refresh(conns=[(1, "b"), (2, "c")], now=T0 + 2000)
    assert await liveness.aconn_leave(user_id=1, channel="b", now=T0 + 3000)  # the last one
    await liveness.aconns_refresh(conns=[(2, "c")], now=T0 + 6000)
    assert await database_sync_to_async(_gone)(T0 + 3000 + grace - 1) == []
    assert await database_sync_to_async(_gone)(T0 + 3000 + grace) == [1]
    assert await database_sync_to_async(_gone)(T0 + 3000 + grace) == []  # reported once


async def test_without_a_close_the_last_refresh_counts(grace):
    """A killed process runs no disconnect hook: its sockets lapse one grace after its last
    refresh; a user with a socket on another process stays."""
    await database_sync_to_async(_in_match)(1, 2)
    await liveness.aconns_refresh(conns=[(1, "dead"), (2, "dead2")], now=T0)
    await liveness.aconns_refresh(conns=[(2, "alive")], now=T0 + 4000)
    assert await database_sync_to_async(_gone)(T0 + grace) == [1]
    await liveness.aconns_refresh(conns=[(2, "alive")], now=T0 + 8000)
    assert await database_sync_to_async(_gone)(T0 + 8000) == []


async def test_a_reconnect_within_the_grace_cancels_it(grace):
    await database_sync_to_async(_in_match)(1)
    await liveness.aconns_refresh(conns=[(1, "a")], now=T0)
    assert await liveness.aconn_leave(user_id=1, channel="a", now=T0)
    await liveness.aconns_refresh(conns=[(1, "reloaded")], now=T0 + 2000)
    assert await database_sync_to_async(_gone)(T0 + grace) == []
    assert await database_sync_to_async(_gone)(T0 + 2000 + grace) == [1]  # it lapsed too


def test_a_new_match_watches_members_with_no_connection_and_only_members(grace):
    _in_match(1)
    liveness.members_watch(user_ids=[1, 3], now=T0)  # 3 is not in a match (any more)
    assert _gone(T0 + grace - 1) == []
    assert _gone(T0 + grace) == [1]
    assert bus().zcard(liveness.live_key()) == 0
