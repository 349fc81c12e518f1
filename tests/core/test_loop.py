"""core.loop: sync code publishes through one long-lived loop, also after fork()."""

import asyncio
import multiprocessing

import pytest
from channels.db import database_sync_to_async

from core import loop
from core.events import _publish, user_group
from tests.conftest import ws_connect

pytestmark = pytest.mark.django_db(transaction=True)


def _push(user_id: int, n: int) -> None:
    _publish([([user_group(user_id)], {"type": "push.event", "event": "test.n", "data": {"n": n}})])


def _child(user_id: int) -> None:
    _push(user_id, 3)  # inherited a reference to the parent's loop: must start its own


async def test_many_publishes_from_sync_code_and_from_a_forked_child_arrive(make_user):
    user = await database_sync_to_async(make_user)()
    async with ws_connect(user, sync={}) as ws:
        await asyncio.to_thread(_push, user.pk, 1)
        await asyncio.to_thread(_push, user.pk, 2)  # a second call: the async_to_sync pitfall
        parent_loop = loop.loop_get()
        child = multiprocessing.get_context("fork").Process(target=_child, args=(user.pk,))
        child.start()
        await asyncio.to_thread(child.join, 30)
        assert child.exitcode == 0
        got = [(await ws.event("test.n", timeout=10))["data"]["n"] for _ in range(3)]
        assert sorted(got) == [1, 2, 3]
        assert loop.loop_get() is parent_loop  # one loop for the life of the process


async def test_loop_run_refuses_to_block_a_running_loop():
    async def nothing():
        return None

    with pytest.raises(RuntimeError):
        loop.loop_run(nothing)
