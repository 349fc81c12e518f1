"""Connection-level frames: heartbeat and resume."""

import time

from django.conf import settings

from conversations import selectors as conv_selectors
from presence import gateway as presence

from .db import db
from .errors import INVALID, ProtocolError
from .router import handler


@handler("ping")
async def ping(conn, data: dict) -> dict:
    """Heartbeat: the client sends one every few seconds and reconnects if no reply."""
    await presence.on_heartbeat(conn)  # keeps this connection alive in presence
    return {"ts": time.time()}


def _parse_cursors(raw: object) -> dict[int, int]:
    if not isinstance(raw, dict):
        raise ProtocolError(INVALID, "conversations must be an object of id -> last seq.")
    limit = settings.LIMITS["RESUME_MAX_CONVERSATIONS"]
    if len(raw) > limit:
        raise ProtocolError(INVALID, f"At most {limit} conversations per sync.")
    cursors: dict[int, int] = {}
    for key, value in raw.items():
        try:
            cid = int(key)
        except (TypeError, ValueError):
            raise ProtocolError(INVALID, f"{key!r} is not a conversation id.") from None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ProtocolError(INVALID, f"The seq for {key} must be an integer >= 0.")
        cursors[cid] = value
    return cursors


@handler("sync")
async def sync(conn, data: dict) -> dict:
    """Replay what the client missed, then let live events flow (docs/protocol.md#resume)."""
    cursors = _parse_cursors(data.get("conversations", {}))
    limit = settings.LIMITS["RESUME_MAX_MESSAGES"]
    batch = await db(conv_selectors.resume_batch)(
        user_id=conn.user_id, cursors=cursors, limit=limit
    )
    summary = {}
    for cid, messages, too_far, head in batch:
        # A cursor past the head (a restored database, a confused client) would silently
        # drop every live message up to it: clamp it.
        after = min(cursors[cid], head)
        await conn.join_conversation(cid)  # in case the `conversation.joined` push was lost
        conn.cursors[cid] = after
        if too_far:
            await conn.send_too_far(cid, after_seq=after, latest_seq=head)
            conn.cursors[cid] = head
        for message in messages:
            await conn.send_sequenced_frame(cid, message["seq"], "message.new", message)
        summary[str(cid)] = {
            "replayed": len(messages),
            "too_far": too_far,
            "latest_seq": conn.cursors[cid],
        }
    await conn.mark_synced()
    return {"conversations": summary}
