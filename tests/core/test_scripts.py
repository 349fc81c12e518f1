"""``core.scripts``: one loader for every Lua file, by SHA, re-sent after a script flush."""

import asyncio
from pathlib import Path

import pytest
import redis

import core.redis as sb_redis
from core.scripts import Script
from switchboard.embedded_redis import redis_server


@pytest.fixture
def echo(tmp_path: Path) -> Script:
    path = tmp_path / "echo.lua"
    path.write_text("-- KEYS[1] any key; ARGV[1] a value. Returns {key, value}.\n"
                    "return {KEYS[1], ARGV[1]}\n")  # fmt: skip
    return Script(path)


@pytest.fixture
def private_bus(settings):
    with redis_server() as (port, _proc):
        settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
        sb_redis._sync_client = None
        yield redis.Redis(port=port, decode_responses=True)
    sb_redis._sync_client = None
    sb_redis._async_clients.clear()


def test_a_script_runs_again_after_the_server_forgot_it(echo, private_bus):
    assert echo.run(keys=["k"], args=["v"]) == ["k", "v"]
    private_bus.script_flush()
    assert echo.run(keys=["k"], args=["w"]) == ["k", "w"]
    assert private_bus.script_exists(echo.sha) == [True]


def test_a_script_queues_in_a_pipeline(echo, private_bus):
    pipe = sb_redis.bus().pipeline(transaction=False)
    echo.run(keys=["a"], args=["1"], client=pipe)
    echo.run(keys=["b"], args=["2"], client=pipe)
    private_bus.script_flush()  # the pipeline loads it before running
    assert pipe.execute() == [["a", "1"], ["b", "2"]]


async def test_async_calls_share_one_pipeline_and_survive_a_flush(echo, private_bus):
    sb_redis._async_clients.pop(asyncio.get_running_loop(), None)
    private_bus.script_flush()
    results = await asyncio.gather(*(echo.arun(keys=[f"k{i}"], args=[i]) for i in range(50)))
    assert results == [[f"k{i}", str(i)] for i in range(50)]
