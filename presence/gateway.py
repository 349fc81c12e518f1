"""Presence on the WebSocket gateway: admit, connect and disconnect hooks, and the refresh
of this process' sockets.

Small and failure-proof on purpose: a Redis hiccup in presence must never close a socket;
the next refresh repairs the state. ``PresenceState`` is this app's per-connection state
(typing bucket and membership checks).

Liveness is the server's word, not the client's (Hardening 7): each process refreshes the
expiry of every socket it holds every ``PRESENCE_TTL_SECONDS / 3``, whether the client pings
or not, so an open socket keeps counting against ``WS_CONNECTIONS_PER_USER`` and keeps its
user online, while the sockets of a killed process stop counting at most TTL after its last
refresh. That timer is the process', not a consumer's: only the process that holds a socket
can vouch that it is open, which Celery Beat cannot. One task per event loop, running only
while the loop holds sockets; one refresh script call per few hundred sockets (refresh.lua).
"""

import asyncio
import logging
from typing import Any

from django.conf import settings

from conversations.gateway import conversation_hears, drop_unless_hears_now
from core.errors import CLOSE_TOO_MANY_CONNECTIONS, Refused
from core.loop import per_loop
from core.ratelimit import TokenBucket
from core.router import Connection, event_hook, event_hook_now, hook

from . import services

logger = logging.getLogger(__name__)

# Sockets per refresh script call: a few hundred keep each call short for Redis.
REFRESH_CHUNK = 100


class PresenceState:
    """What presence and typing keep per connection."""

    def __init__(self) -> None:
        self.touched = False  # admission registered the socket as alive (admit.lua)
        self.typing_bucket = TokenBucket(
            settings.LIMITS["TYPING_RATE_PER_SECOND"], settings.LIMITS["TYPING_RATE_BURST"]
        )
        # conversation id -> monotonic time until which membership is taken as checked
        self.typing_members: dict[int, float] = {}


class _Refresher:
    """The admitted sockets of one event loop, and the task that keeps them alive."""

    def __init__(self) -> None:
        self.conns: dict[str, int] = {}  # connection id -> user id
        self.task: asyncio.Task[None] | None = None

    def add(self, conn_id: str, user_id: int) -> None:
        self.conns[conn_id] = user_id
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())

    def discard(self, conn_id: str) -> None:
        self.conns.pop(conn_id, None)

    async def _run(self) -> None:
        while self.conns:
            await asyncio.sleep(settings.LIMITS["PRESENCE_TTL_SECONDS"] / 3)
            items = [(user_id, conn_id) for conn_id, user_id in self.conns.items()]
            for start in range(0, len(items), REFRESH_CHUNK):
                chunk = [c for c in items[start : start + REFRESH_CHUNK] if c[1] in self.conns]
                # Checked as the call is queued: a socket that closed since the round began
                # has had its leave queued already, and must not be revived after it.
                try:
                    await services.apresence_refresh(conns=chunk)
                except Exception:  # Redis away: the next round repairs; TTL / 3 leaves two more
                    logger.warning("refresh of %s sockets failed", len(chunk), exc_info=True)


_refresher = per_loop(_Refresher)


@hook("admit", order=0)
async def connections_limit(conn: Connection) -> None:
    """Refuse a socket past ``WS_CONNECTIONS_PER_USER`` live ones (over every process).

    Admission registers the connection in the same atomic step as the count (admit.lua),
    so this hook is the one admit hook that writes: if a later one refuses the socket, its
    entry is never refreshed and stops counting after the TTL.
    """
    try:
        admitted = await services.apresence_admit(user_id=conn.user_id, conn_id=conn.channel_name)
    except Exception:  # Redis too busy or away: admit (the limit is a guard, not a right)
        logger.warning("user=%s connection count unavailable", conn.user_id, exc_info=True)
        return
    if not admitted:
        limit = settings.LIMITS["WS_CONNECTIONS_PER_USER"]
        raise Refused(CLOSE_TOO_MANY_CONNECTIONS, f"more than {limit} connections")
    conn.state(PresenceState).touched = True  # admit.lua did the connect's touch too


@hook("connect", order=20)
async def presence_connect(conn: Connection) -> None:
    """Register the new connection as alive (announces the user online if they were not)."""
    _refresher().add(conn.channel_name, conn.user_id)
    if conn.state(PresenceState).touched:
        return
    try:  # admission could not reach Redis: touch now
        await services.apresence_touch(user_id=conn.user_id, conn_id=conn.channel_name)
    except Exception:
        logger.exception("user=%s presence connect failed", conn.user_id)


@hook("disconnect", order=10)
async def presence_disconnect(conn: Connection) -> None:
    """Forget the connection; offline follows from the sweep after the grace period."""
    # Dropped from the refresh before the leave is queued: no refresh can follow the leave.
    _refresher().discard(conn.channel_name)
    try:
        await services.apresence_leave(user_id=conn.user_id, conn_id=conn.channel_name)
    except Exception:
        logger.exception("user=%s presence disconnect failed", conn.user_id)


@event_hook("typing")
async def typing_event(conn: Connection, message: dict[str, Any]) -> bool:
    """Someone's typing, for the conversation's members only (``conversations.members``:
    typing carries no members version, so a group's is checked against a recent copy)."""
    cid = message["data"]["conversation_id"]
    return not await conversation_hears(conn, cid, None)


@event_hook_now("typing")
def typing_event_now(conn: Connection, message: dict[str, Any]) -> bool | None:
    return drop_unless_hears_now(conn, message["data"]["conversation_id"], None)


@event_hook("read")
async def read_event(conn: Connection, message: dict[str, Any]) -> bool:
    """A read receipt, for the conversation's members only."""
    cid = message["data"]["conversation_id"]
    return not await conversation_hears(conn, cid, message.get("members_version", 0))


@event_hook_now("read")
def read_event_now(conn: Connection, message: dict[str, Any]) -> bool | None:
    cid = message["data"]["conversation_id"]
    return drop_unless_hears_now(conn, cid, message.get("members_version", 0))
