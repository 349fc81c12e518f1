"""WebSocket frames of presence, typing, read receipts and unread counts."""

import time
from typing import Any

from django.conf import settings

from conversations.gateway import ConversationState
from conversations.selectors import amembership_exists, membership_accepted_get
from core.db import db
from core.errors import Invalid
from core.router import Connection, handler

from . import receipts, selectors
from .gateway import PresenceState
from .typing import atyping_send


def user_ids_parse(raw: object) -> list[int]:
    """Return a de-duplicated list of user ids from a frame, or raise ``invalid``."""
    limit = settings.LIMITS["PRESENCE_QUERY_MAX_USERS"]
    if not isinstance(raw, list) or not all(
        isinstance(u, int) and not isinstance(u, bool) for u in raw
    ):
        raise Invalid("user_ids must be a list of user ids.")
    if len(raw) > limit:
        raise Invalid(f"At most {limit} user ids per query.")
    return list(dict.fromkeys(raw))


def _presence_query(user_id: int, user_ids: list[int]) -> list[dict]:
    visible = selectors.visible_user_ids(user_id=user_id, user_ids=user_ids)
    return selectors.presence_get(user_ids=[uid for uid in user_ids if uid in visible])


@handler("presence.query")
async def presence_query(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Presence of my contacts (and me); others are left out."""
    user_ids = user_ids_parse(data.get("user_ids"))
    return {"presence": await db(_presence_query)(conn.user_id, user_ids)}


async def _typing_member_check(user_id: int, conversation_id: int) -> None:
    """Raise ``forbidden`` / ``not_found`` / ``not_accepted`` unless the user is an accepted
    member (one cheap read)."""
    if not await amembership_exists(user_id=user_id, conversation_id=conversation_id):
        # the reason
        await db(membership_accepted_get)(user_id=user_id, conversation_id=conversation_id)


def _conversation_id(data: dict[str, Any]) -> int:
    cid = data.get("conversation_id")
    if not isinstance(cid, int) or isinstance(cid, bool):
        raise Invalid("conversation_id must be an integer.")
    return cid


async def _typing(conn: Connection, data: dict[str, Any], typing: bool) -> dict[str, Any]:
    cid = _conversation_id(data)
    state = conn.state(PresenceState)
    now = time.monotonic()
    # Membership is re-checked after TYPING_MEMBERSHIP_CHECK_SECONDS, and at once when the
    # connection stopped listening to the conversation (``conversation.left``). The re-check
    # was 16 % of a server's CPU in the typical-load benchmark at 30 s.
    if cid not in conn.state(ConversationState).joined or state.typing_members.get(cid, 0.0) < now:
        state.typing_members.pop(cid, None)
        await _typing_member_check(conn.user_id, cid)
        state.typing_members[cid] = now + settings.LIMITS["TYPING_MEMBERSHIP_CHECK_SECONDS"]
    if not state.typing_bucket.take():
        return {"sent": False}  # over the typing rate: dropped, not an error
    await atyping_send(user_id=conn.user_id, conversation_id=cid, typing=typing)
    return {"sent": True}


@handler("typing.start", ref_optional=True)
async def typing_start(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """I am typing in a conversation (re-send every few seconds while it lasts)."""
    return await _typing(conn, data, True)


@handler("typing.stop", ref_optional=True)
async def typing_stop(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """I stopped typing (sent the message, or cleared the input)."""
    return await _typing(conn, data, False)


@handler("read")
async def read(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Move my read marker in a conversation forward to ``seq``."""
    return await db(receipts.read_mark)(
        user_id=conn.user_id, conversation_id=data.get("conversation_id"), seq=data.get("seq")
    )


@handler("read.markers")
async def read_markers(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Who has read up to where in a conversation I am in."""
    return await db(selectors.read_markers)(
        user_id=conn.user_id, conversation_id=_conversation_id(data)
    )


@handler("unread.get")
async def unread_get(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """My total unread count and the conversations with unread messages."""
    return await db(selectors.unread_summary)(user_id=conn.user_id)
