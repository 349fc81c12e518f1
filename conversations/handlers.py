"""WebSocket frames for messaging: send, edit, delete, accept / decline a request, and
resume (``sync``)."""

from typing import Any

from django.conf import settings

from core.db import db
from core.errors import Invalid
from core.router import Connection, handler

from . import services
from .gateway import (
    ConversationState,
    actions_perform,
    changes_too_far_send,
    conversation_join,
    conversation_leave,
    synced_mark,
)
from .models import Membership
from .selectors import (
    Unnamed,
    aresume_batch,
    conversation_get,
    conversation_list,
    message_serialize,
)
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


def _cursor_int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Invalid(f"{what} must be an integer >= 0.")
    return value


def cursors_parse(raw: object) -> tuple[dict[int, int], dict[int, int]]:
    """Return ``{conversation id: last seq}`` and ``{conversation id: last change}`` from a
    ``sync`` frame, or raise ``invalid``.

    A cursor is the last seq (an integer), or ``{"seq": n, "change_seq": c}``: the last seq
    and the last change (edit or deletion) the client holds.
    """
    if not isinstance(raw, dict):
        raise Invalid("conversations must be an object of id -> last seq.")
    limit = settings.LIMITS["RESUME_MAX_CONVERSATIONS"]
    if len(raw) > limit:
        raise Invalid(f"At most {limit} conversations per sync.")
    cursors: dict[int, int] = {}
    changes: dict[int, int] = {}
    for key, value in raw.items():
        try:
            cid = int(key)
        except (TypeError, ValueError):
            raise Invalid(f"{key!r} is not a conversation id.") from None
        if isinstance(value, dict):
            if set(value) - {"seq", "change_seq"}:
                raise Invalid(f"The cursor for {key} has only seq and change_seq.")
            cursors[cid] = _cursor_int(value.get("seq"), f"The seq for {key}")
            if "change_seq" in value:
                changes[cid] = _cursor_int(value["change_seq"], f"The change_seq for {key}")
        else:
            cursors[cid] = _cursor_int(value, f"The seq for {key}")
    return cursors, changes


@handler("sync")
async def sync(conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Replay what the client missed, then let live events flow (docs/protocol.md#resume).

    Per conversation named: the messages after its cursor, then (with a change cursor)
    the edits and deletions after it. In the last ``sync`` of the connection (no
    ``more``): the user's conversations the client did not name, with their summaries
    (created, joined or accepted while it was away; requests and invitations), and those
    it named that it is not in. One statement reads it all; the summaries, when there are
    any, one more.
    """
    cursors, change_cursors = cursors_parse(data.get("conversations", {}))
    more = data.get("more", False)
    if not isinstance(more, bool):
        raise Invalid("more must be a boolean.")
    state = conn.state(ConversationState)
    state.named.update(cursors)
    batch = await aresume_batch(
        user_id=conn.user_id,
        cursors=cursors,
        change_cursors=change_cursors,
        limit=settings.LIMITS["RESUME_MAX_MESSAGES"],
        changes_limit=settings.LIMITS["RESUME_MAX_CHANGES"],
        known=None if more else sorted(state.named),
    )
    sequencer = state.sequencer
    summary = {}
    for r in batch.conversations:
        cid = r.conversation_id
        await conversation_join(conn, cid)  # in case the `conversation.joined` push was lost
        tracked = cid in change_cursors
        await actions_perform(
            conn,
            sequencer.resume(
                cid,
                after_seq=cursors[cid],
                head=r.head,
                too_far=r.too_far,
                change_head=r.change_head if tracked else None,
            ),
        )
        if r.changes_too_far:
            await changes_too_far_send(
                conn, conversation_id=cid, after_change_seq=change_cursors[cid],
                latest_change_seq=r.change_head,
            )  # fmt: skip
        for message in r.changes:  # older messages, changed: before the new ones
            await conn.send_frame({"type": "message.updated", "data": message})
        replayed = 0
        for message in r.messages:
            if sequencer.replayed(cid, message["seq"]):
                await conn.send_frame({"type": "message.new", "data": message})
                replayed += 1
        summary[str(cid)] = {
            "replayed": replayed,
            "too_far": r.too_far,
            "latest_seq": sequencer.cursor(cid),
            "changes_replayed": len(r.changes),
            "changes_too_far": r.changes_too_far,
            "latest_change_seq": r.change_head,
        }
    reply: dict[str, Any] = {
        "conversations": summary,
        "left": sorted(set(cursors) - {r.conversation_id for r in batch.conversations}),
    }
    for cid in reply["left"]:
        await conversation_leave(conn, cid)
    if not more:
        reply.update(await _unnamed_list(conn, batch.unnamed))
    await synced_mark(conn)
    return reply


async def _unnamed_list(conn: Connection, unnamed: list[Unnamed]) -> dict[str, Any]:
    """``joined`` and ``requests``: the summaries of the conversations the client did not
    name, as ``GET /api/conversations`` (and ``?state=pending``) gives them, most recently
    active first; ``truncated`` when there were more than one list holds."""
    sequencer = conn.state(ConversationState).sequencer
    accepted = [u.conversation_id for u in unnamed if u.state == Membership.State.ACCEPTED]
    pending = [u.conversation_id for u in unnamed if u.state != Membership.State.ACCEPTED]
    for u in unnamed:
        if u.state == Membership.State.ACCEPTED:
            await conversation_join(conn, u.conversation_id)
            sequencer.unnamed(u.conversation_id, u.head, u.change_head)
    limit = settings.LIMITS["CONVERSATION_LIST_MAX"]
    lists: dict[str, list[dict]] = {"joined": [], "requests": []}
    for key, ids, membership_state in (
        ("joined", accepted, Membership.State.ACCEPTED),
        ("requests", pending, Membership.State.PENDING),
    ):
        if ids:
            lists[key] = await db(conversation_list)(
                user_id=conn.user_id, state=membership_state, conversation_ids=ids
            )
    return {**lists, "truncated": len(accepted) > limit or len(pending) > limit}
