"""core.batches: callers queued while a batch runs are the next batch; errors reach them."""

import asyncio

from core.batches import Batches, Reads
from core.loop import per_loop


async def test_callers_queued_while_a_batch_runs_are_the_next_batch_and_hear_its_error():
    batches_seen: list[list[int]] = []

    async def run(items: list[int]) -> None:
        batches_seen.append(items)
        await asyncio.sleep(0.01)
        if 13 in items:
            raise ValueError("unlucky")

    batches: Batches[int] = Batches(run)
    first = asyncio.ensure_future(batches.add([1]))
    await asyncio.sleep(0)  # the first batch is on its way
    rest = [asyncio.ensure_future(batches.add([n])) for n in (2, 13, 4)]
    results = await asyncio.gather(first, *rest, return_exceptions=True)
    assert batches_seen == [[1], [2, 13, 4]]  # alone at once, then the rest together
    assert results[0] is None
    assert all(isinstance(r, ValueError) for r in results[1:])  # the whole batch hears it
    await batches.add([5])  # and the next call runs again
    assert batches_seen[-1] == [5]


async def test_reads_of_many_callers_are_one_look_up_each_caller_gets_its_own_value():
    asked: list[list[str]] = []

    async def read(keys: list[str]) -> dict[str, int]:
        asked.append(keys)
        await asyncio.sleep(0.01)
        if "boom" in keys:
            raise ValueError("read failed")
        return {k: len(k) for k in keys if k != "nobody"}

    reads: Reads[str, int | None] = Reads(read, None)
    first = asyncio.ensure_future(reads.get("a"))
    await asyncio.sleep(0)
    keys = ["bb", "ccc", "bb", "nobody"]
    got = await asyncio.gather(first, *(reads.get(k) for k in keys))
    assert asked == [["a"], ["bb", "ccc", "nobody"]]  # the same key read once per batch
    assert got == [1, 2, 3, 2, None]  # and a key not found is ``missing``
    results = await asyncio.gather(reads.get("x"), reads.get("boom"), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)  # the batch's error, to each
    assert await reads.get("dd") == 2


async def test_an_inline_batch_runs_in_its_callers_task_and_the_callers_meanwhile_follow():
    seen: list[tuple[list[int], asyncio.Task | None]] = []

    async def run(items: list[int]) -> None:
        seen.append((items, asyncio.current_task()))
        await asyncio.sleep(0.01)
        if 13 in items:
            raise ValueError("unlucky")

    batches: Batches[int] = Batches(run, inline=True)
    first = asyncio.ensure_future(batches.add([1]))
    await asyncio.sleep(0)  # the first caller runs its batch itself
    assert seen == [([1], first)]
    rest = [asyncio.ensure_future(batches.add([n])) for n in (2, 13, 4)]
    results = await asyncio.gather(first, *rest, return_exceptions=True)
    assert [items for items, _ in seen] == [[1], [2, 13, 4]]  # in order, the rest together
    assert seen[1][1] not in (first, *rest)  # run by a task of its own
    assert results[0] is None
    assert all(isinstance(r, ValueError) for r in results[1:])

    # A cancelled inline caller leaves the callers queued behind it served.
    slow = asyncio.ensure_future(batches.add([7]))
    await asyncio.sleep(0)
    behind = asyncio.ensure_future(batches.add([8]))
    await asyncio.sleep(0)
    slow.cancel()
    await asyncio.wait_for(behind, 1)
    assert [items for items, _ in seen][-2:] == [[7], [8]]
    await batches.add([9])  # idle again: inline once more
    assert seen[-1][0] == [9]


async def test_per_loop_gives_each_event_loop_its_own_instance():
    of_loop = per_loop(object)
    here = of_loop()
    assert of_loop() is here
    elsewhere = await asyncio.get_running_loop().run_in_executor(
        None, lambda: asyncio.run(_call(of_loop))
    )
    assert elsewhere is not here


async def _call(fn):
    return fn()
