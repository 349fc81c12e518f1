"""ops.connections: the per-process open-socket count in the bus, written coalesced."""

import asyncio

from core.redis import abus
from ops import connections


async def test_a_burst_of_opens_and_closes_ends_on_the_true_count_in_few_writes(monkeypatch):
    writes = 0
    write = connections._write

    async def counted():
        nonlocal writes
        writes += 1
        await write()

    monkeypatch.setattr(connections, "_write", counted)
    before = connections._open
    await asyncio.gather(*(connections.connection_opened() for _ in range(50)))
    await asyncio.gather(*(connections.connection_closed() for _ in range(20)))
    stored = await abus().hget(connections.ws_key(), connections.PROCESS_ID)
    assert int(stored.split()[0]) == before + 30  # the last write carried the final count
    assert writes < 70 / 4  # a write in flight absorbs the ones asked meanwhile
    await asyncio.gather(*(connections.connection_closed() for _ in range(30)))
    stored = await abus().hget(connections.ws_key(), connections.PROCESS_ID)
    assert int(stored.split()[0]) == before
