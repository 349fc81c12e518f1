"""Meet on the WebSocket gateway: a socket that entered the pool takes its ticket out when
it closes (issue #5). ``MeetState`` is this app's per-connection state."""

import logging

from core.router import Connection, hook

from . import pool

logger = logging.getLogger(__name__)


class MeetState:
    def __init__(self) -> None:
        self.entered = False  # this socket put a ticket in the pool


@hook("disconnect", order=20)
async def pool_leave_on_close(conn: Connection) -> None:
    """Take the ticket this connection entered out of the pool (its TTL would, later)."""
    if not conn.state(MeetState).entered:
        return
    try:
        await pool.apool_leave(user_id=conn.user_id, channel=conn.channel_name)
    except Exception:  # its TTL removes it anyway
        logger.warning("user=%s pool leave failed", conn.user_id, exc_info=True)
