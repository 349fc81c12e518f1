"""Presence on the WebSocket gateway: admit, connect, heartbeat, disconnect hooks.

Small and failure-proof on purpose: a Redis hiccup in presence must never close a socket
or fail a ``ping``; the next heartbeat repairs the state. ``PresenceState`` is this app's
per-connection state (heartbeat throttle, typing bucket and membership checks).
"""

import logging
import time

from django.conf import settings

from core.errors import CLOSE_TOO_MANY_CONNECTIONS, Refused
from core.ratelimit import TokenBucket
from core.router import Connection, hook

from . import selectors, services

logger = logging.getLogger(__name__)


class PresenceState:
    """What presence and typing keep per connection."""

    def __init__(self) -> None:
        self.refreshed = 0.0  # monotonic time of the last touch
        self.typing_bucket = TokenBucket(
            settings.LIMITS["TYPING_RATE_PER_SECOND"], settings.LIMITS["TYPING_RATE_BURST"]
        )
        # conversation id -> monotonic time until which membership is taken as checked
        self.typing_members: dict[int, float] = {}


@hook("admit", order=0)
async def connections_limit(conn: Connection) -> None:
    """Refuse a socket past ``WS_CONNECTIONS_PER_USER`` live ones (over every process)."""
    limit = settings.LIMITS["WS_CONNECTIONS_PER_USER"]
    try:
        alive = await selectors.aconnections_alive_count(user_id=conn.user_id)
    except Exception:  # Redis too busy or away: admit (the limit is a guard, not a right)
        logger.warning("user=%s connection count unavailable", conn.user_id, exc_info=True)
        return
    if alive >= limit:
        raise Refused(CLOSE_TOO_MANY_CONNECTIONS, f"more than {limit} connections")


@hook("connect", order=20)
async def presence_connect(conn: Connection) -> None:
    """Register the new connection as alive (announces the user online if they were not)."""
    conn.state(PresenceState).refreshed = time.monotonic()
    try:
        await services.apresence_touch(user_id=conn.user_id, conn_id=conn.channel_name)
    except Exception:
        logger.exception("user=%s presence connect failed", conn.user_id)


@hook("heartbeat")
async def presence_heartbeat(conn: Connection) -> None:
    """Push the connection's expiry forward, at most every TTL / 4 whatever the ping rate."""
    state = conn.state(PresenceState)
    now = time.monotonic()
    # TTL / 4: with the protocol's 15 s ping every ping refreshes (TTL 45 s), and a faster
    # pinger costs no more Redis work.
    if now - state.refreshed < settings.LIMITS["PRESENCE_TTL_SECONDS"] / 4:
        return
    state.refreshed = now
    try:
        await services.apresence_touch(user_id=conn.user_id, conn_id=conn.channel_name)
    except Exception:
        logger.exception("user=%s presence heartbeat failed", conn.user_id)


@hook("disconnect", order=10)
async def presence_disconnect(conn: Connection) -> None:
    """Forget the connection; offline follows from the sweep after the grace period."""
    try:
        await services.apresence_leave(user_id=conn.user_id, conn_id=conn.channel_name)
    except Exception:
        logger.exception("user=%s presence disconnect failed", conn.user_id)
