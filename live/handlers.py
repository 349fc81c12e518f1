"""WebSocket frames of the live feed (docs/protocol.md, "Live feed")."""

from typing import Any

from core.db import db
from core.router import Connection, handler

from . import services


@handler("live.subscribe")
async def live_subscribe(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Receive ``live.stats`` events until ``live.unsubscribe`` or disconnect."""
    await conn.group_join(services.LIVE_GROUP)
    # The latest numbers at once, rather than a blank dashboard until the next tick.
    return {"stats": await db(services.live_stats_last)()}


@handler("live.unsubscribe")
async def live_unsubscribe(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Stop receiving ``live.stats``."""
    await conn.group_leave(services.LIVE_GROUP)
    return {}
