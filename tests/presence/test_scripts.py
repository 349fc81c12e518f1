"""Presence's scripts through core.scripts: async calls go to Redis in one pipeline per round."""

import asyncio
import time

import pytest
import redis

import core.redis as sb_redis
from core import scripts
from presence.selectors import conns_key
from presence.services import LEAVE, TOUCH, _leave_args, _touch_args
from switchboard.embedded_redis import redis_server


@pytest.fixture
def private_bus(settings):
    """The bus of this test's event loop is a private Redis (its scripts can be flushed)."""
    with redis_server() as (port, _proc):
        settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
        yield redis.Redis(port=port, decode_responses=True)
    sb_redis._async_clients.clear()


async def test_a_burst_of_presence_calls_is_pipelined_and_survives_a_script_flush(private_bus):
    sb_redis._async_clients.pop(asyncio.get_running_loop(), None)
    private_bus.script_flush()  # NOSCRIPT for every call of the first round
    rounds = 0
    execute = sb_redis.abus().pipeline(transaction=False).__class__.execute

    async def counted(self, *args, **kwargs):
        nonlocal rounds
        rounds += 1
        return await execute(self, *args, **kwargs)

    pipeline_class = sb_redis.abus().pipeline(transaction=False).__class__
    pipeline_class.execute = counted
    try:
        now = time.time()
        touched = await asyncio.gather(
            *(TOUCH.arun(**_touch_args(uid, f"c{uid}", now)) for uid in range(1, 201))
        )
        assert 1 <= rounds <= 3  # 200 calls, a pipeline or a few, not 200 round trips
        assert [announce for announce, _write in touched] == [1] * 200  # each came online
        assert private_bus.zcard(conns_key(7)) == 1
        left = await asyncio.gather(
            *(LEAVE.arun(**_leave_args(uid, f"c{uid}", now + 1)) for uid in range(1, 201))
        )
        assert left == [0] * 200  # no connection left for any of them
    finally:
        pipeline_class.execute = execute
    # one batch per loop and bus server (core.scripts); none left waiting
    assert [b.pending for b in scripts._batches[asyncio.get_running_loop()].values()] == [[]]
