"""The gateway's own frame: the heartbeat (``ping``)."""

import time
from typing import Any

from core.router import Connection, handler, hooks_for


@handler("ping")
async def ping(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Heartbeat: the client sends one every few seconds and reconnects if no reply."""
    # Presence does not hook in here: a socket counts while its server holds it open, so a
    # client that never pings is not forgotten (Hardening 7, presence/gateway.py).
    for hook in hooks_for("heartbeat"):
        await hook(conn)
    return {"ts": time.time()}
