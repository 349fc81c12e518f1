"""core.batches: callers queued while a batch runs are the next batch; errors reach them."""

import asyncio

from core.batches import Batches


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
