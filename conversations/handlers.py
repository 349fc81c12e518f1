"""WebSocket frames for messaging: send, edit, delete, accept / decline a request, and
resume (``sync``)."""

from typing import Any

from django.conf import settings

from core.db import db
from core.errors import Invalid
from core.router import Connection, handler

from . import services
from .gateway import ConversationState, actions_perform, conversation_join, synced_mark
from .selectors import aresume_batch, conversation_get, message_serialize
from .writer import amessage_send, send_request_parse


@handler("message.send")
async def message_send(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Store a message (once per client_id) and push it to every member.

    Queued with the sends of every socket of this process and stored by the group commit
    (``conversations.writer``), from this event loop. The reply carries the message; when
    it is this connection's next seq, that is its delivery here and the connection does not
    receive it again as ``message.new`` (docs/protocol.md, "message.send").
    """
    request = send_request_parse(
        sender_id=conn.user_id,
        conversation_id=data.get("conversation_id"),
        body=data.get("body"),
        client_id=data.get("client_id"),
    )
    message, created = await amessage_send(request)
    state = conn.state(ConversationState)
    if message.conversation_id in state.joined:
        state.sequencer.sent(message.conversation_id, message.seq)
    return {"message": message_serialize(message), "duplicate": not created}


@handler("message.edit")
async def message_edit(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    message = await db(services.message_edit)(
        user_id=conn.user_id, message_id=data.get("message_id"), body=data.get("body")
    )
    return {"message": message_serialize(message)}


@handler("message.delete")
async def message_delete(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    message = await db(services.message_delete)(
        user_id=conn.user_id, message_id=data.get("message_id")
    )
    return {"message": message_serialize(message)}


def _conversation_id(data: dict[str, Any]) -> int:
    cid = data.get("conversation_id")
    if not isinstance(cid, int) or isinstance(cid, bool):
        raise Invalid("conversation_id must be an integer.")
    return cid


@handler("conversation.accept")
async def conversation_accept(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Accept my request or invitation; every socket of mine then hears the conversation
    (``conversation.joined``, pushed to each of them on every process)."""
    cid = _conversation_id(data)
    await db(services.membership_accept)(user_id=conn.user_id, conversation_id=cid)
    return {"conversation": await db(conversation_get)(user_id=conn.user_id, conversation_id=cid)}


@handler("conversation.decline")
async def conversation_decline(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Decline my request or invitation: my membership is removed."""
    cid = _conversation_id(data)
    await db(services.membership_decline)(user_id=conn.user_id, conversation_id=cid)
    return {"conversation_id": cid}


def cursors_parse(raw: object) -> dict[int, int]:
    """Return ``{conversation id: last seq}`` from a ``sync`` frame, or raise ``invalid``."""
    if not isinstance(raw, dict):
        raise Invalid("conversations must be an object of id -> last seq.")
    limit = settings.LIMITS["RESUME_MAX_CONVERSATIONS"]
    if len(raw) > limit:
        raise Invalid(f"At most {limit} conversations per sync.")
    cursors: dict[int, int] = {}
    for key, value in raw.items():
        try:
            cid = int(key)
        except (TypeError, ValueError):
            raise Invalid(f"{key!r} is not a conversation id.") from None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise Invalid(f"The seq for {key} must be an integer >= 0.")
        cursors[cid] = value
    return cursors


@handler("sync")
async def sync(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Replay what the client missed, then let live events flow (docs/protocol.md#resume)."""
    cursors = cursors_parse(data.get("conversations", {}))
    batch = await aresume_batch(
        user_id=conn.user_id, cursors=cursors, limit=settings.LIMITS["RESUME_MAX_MESSAGES"]
    )
    sequencer = conn.state(ConversationState).sequencer
    summary = {}
    for cid, messages, too_far, head in batch:
        await conversation_join(conn, cid)  # in case the `conversation.joined` push was lost
        await actions_perform(
            conn, sequencer.resume(cid, after_seq=cursors[cid], head=head, too_far=too_far)
        )
        replayed = 0
        for message in messages:
            if sequencer.replayed(cid, message["seq"]):
                await conn.send_frame({"type": "message.new", "data": message})
                replayed += 1
        summary[str(cid)] = {
            "replayed": replayed,
            "too_far": too_far,
            "latest_seq": sequencer.cursor(cid),
        }
    await synced_mark(conn)
    return {"conversations": summary}
