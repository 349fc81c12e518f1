"""The gateway's own frame: the heartbeat (``ping``)."""

import time
from typing import Any

from core.router import Connection, handler, hooks_for


@handler("ping")
async def ping(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Heartbeat: the client sends one every few seconds and reconnects if no reply."""
    # Presence no longer listens here: the server refreshes its sockets itself.
    for hook in hooks_for("heartbeat"):
        await hook(conn)
    return {"ts": time.time()}
