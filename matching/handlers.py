"""WebSocket frames of Meet: pool, my current match, room text, WebRTC signalling, block, report.

Frames and events are documented in docs/protocol.md ("Meet"). Each handler parses and
calls one service in the thread pool; the gateway replies to the ``ServiceError``s they
raise with the error's stable code. A socket that sends a frame about the pool or a room
attends Meet (``gateway.attend``): it counts as one of its user's connections in the room.
"""

from typing import Any

from core.db import db
from core.router import Connection, handler

from . import selectors, services
from .gateway import MeetState, attend


def _enter_options(data: dict[str, Any]) -> dict[str, Any]:
    options = {}
    if "interests" in data:
        options["interests"] = data["interests"]
    if "region" in data:
        options["region_mode"] = data["region"]
    return options


@handler("match.enter")
async def match_enter(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Enter the pool (again: refreshes my one ticket); counts toward the rate limit."""
    await db(services.match_rate_check)(user_id=conn.user_id)
    await attend(conn)
    conn.state(MeetState).entered = True  # its disconnect takes the ticket out of the pool
    return await db(services.match_enter)(
        user_id=conn.user_id, channel_name=conn.channel_name, **_enter_options(data)
    )


@handler("match.waiting")
async def match_waiting(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """What my waiting ticket searches for, how many could match, when it widens."""
    return await db(selectors.waiting_status)(user_id=conn.user_id)


@handler("match.cancel")
async def match_cancel(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Leave the pool (whichever connection entered)."""
    return {"removed": await db(services.match_cancel)(user_id=conn.user_id)}


@handler("match.skip")
async def match_skip(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """End my match for both; with ``requeue`` enter the pool again at once."""
    await attend(conn)
    if data.get("requeue"):
        conn.state(MeetState).entered = True
    return await db(services.match_skip)(
        user_id=conn.user_id,
        match_id=data.get("match_id"),
        requeue=data.get("requeue", False),
        channel_name=conn.channel_name,
        **_enter_options(data),
    )


@handler("match.current")
async def match_current(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """My open match, if any; with ``rejoin`` this view takes the room (reload, new tab)."""
    await attend(conn)  # before the read: a match found here is watched through this socket
    return await db(services.match_current)(user_id=conn.user_id, rejoin=data.get("rejoin", False))


@handler("match.say")
async def match_say(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Relay a text line to my partner (ephemeral)."""
    await attend(conn)
    return await db(services.room_say)(
        user_id=conn.user_id, match_id=data.get("match_id"), text=data.get("text")
    )


@handler("match.signal")
async def match_signal(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Relay a WebRTC offer / answer / ICE candidate to my partner only."""
    await attend(conn)
    await db(services.room_signal)(
        user_id=conn.user_id,
        match_id=data.get("match_id"),
        kind=data.get("kind"),
        payload=data.get("payload"),
    )
    return {}


@handler("match.block")
async def match_block(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Block my partner in a match (or a user id); ends our open match."""
    block = await db(services.block_create)(
        user_id=conn.user_id, match_id=data.get("match_id"), blocked_id=data.get("user_id")
    )
    return {"blocked_user_id": block.blocked_id}


@handler("match.keep")
async def match_keep(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Keep in touch with my partner; when both chose, the match becomes a conversation."""
    return await db(services.match_keep)(user_id=conn.user_id, match_id=data.get("match_id"))


@handler("match.report")
async def match_report(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Report my partner in a match for review."""
    report = await db(services.report_create)(
        user_id=conn.user_id,
        match_id=data.get("match_id"),
        reason=data.get("reason"),
        text=data.get("text", ""),
        attach_lines=data.get("attach_lines", False),
    )
    return {"report_id": report.pk}
