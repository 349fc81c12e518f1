"""Presence hooks of the WebSocket consumer: connect, heartbeat, disconnect.

Small and failure-proof on purpose: a Redis hiccup in presence must never close a socket
or fail a ``ping``; the next heartbeat repairs the state.
"""

import logging
import time

from django.conf import settings

from . import services

logger = logging.getLogger(__name__)


async def on_connect(conn) -> None:
    """Register the new connection as alive (announces the user online if they were not)."""
    conn.presence_refreshed = time.monotonic()
    try:
        await services.presence_atouch(user_id=conn.user_id, conn_id=conn.channel_name)
    except Exception:
        logger.exception("user=%s presence connect failed", conn.user_id)


async def on_heartbeat(conn) -> None:
    """Push the connection's expiry forward, at most every TTL / 4 whatever the ping rate."""
    now = time.monotonic()
    # TTL / 4: with the protocol's 15 s ping every ping refreshes (TTL 45 s), and a faster
    # pinger costs no more Redis work.
    if now - getattr(conn, "presence_refreshed", 0.0) < settings.LIMITS["PRESENCE_TTL_SECONDS"] / 4:
        return
    conn.presence_refreshed = now
    try:
        await services.presence_atouch(user_id=conn.user_id, conn_id=conn.channel_name)
    except Exception:
        logger.exception("user=%s presence heartbeat failed", conn.user_id)


async def on_disconnect(conn) -> None:
    """Forget the connection; offline follows from the sweep after the grace period."""
    try:
        await services.presence_aleave(user_id=conn.user_id, conn_id=conn.channel_name)
    except Exception:
        logger.exception("user=%s presence disconnect failed", conn.user_id)
