"""Meet on the WebSocket gateway (issue #5, issue 15). ``MeetState`` is this app's
per-connection state.

- A socket that entered the pool takes its ticket out when it closes.
- A socket that sends a Meet frame *attends* Meet: its process vouches for it in Redis
  (``matching.liveness``) every ``MEET_PARTNER_GRACE_SECONDS / 3`` while it is open, and its
  close is reported at once, so that a match whose member has no connection left for the
  grace is ended by the sweep (``partner_left``), even when a killed process ran no
  disconnect hook. That timer is the process', not a consumer's (as presence's refresh):
  only the process that holds a socket can vouch that it is open, which Celery Beat cannot.
  One task per event loop, running only while the loop holds attending sockets; one script
  call per ``REFRESH_CHUNK`` sockets.
"""

import asyncio
import logging

from django.conf import settings

from core.loop import per_loop
from core.router import Connection, hook

from . import liveness, pool

logger = logging.getLogger(__name__)

REFRESH_CHUNK = 100


class MeetState:
    def __init__(self) -> None:
        self.entered = False  # this socket put a ticket in the pool
        self.attending = False  # this socket sent a Meet frame: it counts as in the room


class _Refresher:
    """The attending sockets of one event loop, and the task that vouches for them."""

    def __init__(self) -> None:
        self.conns: dict[str, int] = {}  # channel name -> user id
        self.task: asyncio.Task[None] | None = None

    def add(self, channel: str, user_id: int) -> None:
        self.conns[channel] = user_id
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())

    def discard(self, channel: str) -> None:
        self.conns.pop(channel, None)

    async def _run(self) -> None:
        while self.conns:
            await asyncio.sleep(settings.LIMITS["MEET_PARTNER_GRACE_SECONDS"] / 3)
            items = [(user_id, channel) for channel, user_id in self.conns.items()]
            for start in range(0, len(items), REFRESH_CHUNK):
                # Checked as the call is queued: a socket closed since the round began has
                # had its leave queued already, and must not be revived after it.
                chunk = [c for c in items[start : start + REFRESH_CHUNK] if c[1] in self.conns]
                try:
                    await liveness.aconns_refresh(conns=chunk)
                except Exception:  # Redis away: the next round repairs; grace / 3 leaves two
                    logger.warning("refresh of %s Meet sockets failed", len(chunk), exc_info=True)


_refresher = per_loop(_Refresher)


async def attend(conn: Connection) -> None:
    """Count this socket as one of its user's connections in Meet (first Meet frame)."""
    state = conn.state(MeetState)
    if state.attending:
        return
    state.attending = True
    _refresher().add(conn.channel_name, conn.user_id)
    try:
        await liveness.aconns_refresh(conns=[(conn.user_id, conn.channel_name)])
    except Exception:  # the next refresh round writes it
        logger.warning("user=%s Meet attend failed", conn.user_id, exc_info=True)


@hook("disconnect", order=20)
async def pool_leave_on_close(conn: Connection) -> None:
    """Take the ticket this connection entered out of the pool (its TTL would, later)."""
    if not conn.state(MeetState).entered:
        return
    try:
        await pool.apool_leave(user_id=conn.user_id, channel=conn.channel_name)
    except Exception:  # its TTL removes it anyway
        logger.warning("user=%s pool leave failed", conn.user_id, exc_info=True)


@hook("disconnect", order=21)
async def attend_leave_on_close(conn: Connection) -> None:
    """Report the close: the grace of a match member starts with their last connection's."""
    if not conn.state(MeetState).attending:
        return
    # Dropped from the refresh before the leave is queued: no refresh can follow the leave.
    _refresher().discard(conn.channel_name)
    try:
        await liveness.aconn_leave(user_id=conn.user_id, channel=conn.channel_name)
    except Exception:  # its entry stops being refreshed and lapses after the grace
        logger.warning("user=%s Meet leave failed", conn.user_id, exc_info=True)
