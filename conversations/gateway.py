"""Conversations on a WebSocket: subscriptions, cursors and in-order delivery per connection.

``ConversationState`` is this app's per-connection state: the conversations the socket
listens to and its ``Sequencer`` (pure, ``conversations.sequencer``). The hooks here join a
connection to its conversations, pass every ``message.new`` through the sequencer and
perform what it decides: send, fetch a gap from PostgreSQL, or tell the client it is too far
behind. Membership events change the subscriptions.
"""

from typing import Any

from django.conf import settings

from core.db import db
from core.events import conversation_group
from core.router import Connection, event_hook, event_hook_now, hook

from . import selectors
from .members import amember_hears, member_hears_now
from .sequencer import Action, Fetch, FetchChanges, Send, Sequencer, TooFar, Wait

# The event a connection posts to itself when a gap's reorder wait is over (never published).
GAP_DUE = "message.gap_due"


class ConversationState:
    """What one connection knows of the user's conversations."""

    def __init__(self) -> None:
        self.joined: set[int] = set()
        # The conversations the client named in its ``sync`` frames on this connection.
        self.named: set[int] = set()
        self.sequencer = Sequencer(
            presync_max=settings.LIMITS["WS_PRESYNC_BUFFER_MAX"],
            resume_max=settings.LIMITS["RESUME_MAX_MESSAGES"],
        )


async def conversation_join(conn: Connection, conversation_id: int) -> None:
    """Listen to a conversation's events on this connection."""
    state = conn.state(ConversationState)
    if conversation_id not in state.joined:
        state.joined.add(conversation_id)
        await conn.group_join(conversation_group(conversation_id))


async def conversation_leave(conn: Connection, conversation_id: int) -> None:
    """Stop listening to a conversation (left, or removed) and forget its cursor."""
    state = conn.state(ConversationState)
    state.sequencer.left(conversation_id)
    if conversation_id in state.joined:
        state.joined.discard(conversation_id)
        await conn.group_leave(conversation_group(conversation_id))


async def actions_perform(conn: Connection, actions: list[Action]) -> None:
    """Do what the sequencer decided, in order."""
    state = conn.state(ConversationState)
    for action in actions:
        if isinstance(action, Send):
            await conn.send_event(action.item)
        elif isinstance(action, TooFar):
            await too_far_send(
                conn,
                conversation_id=action.conversation_id,
                after_seq=action.after_seq,
                latest_seq=action.latest_seq,
            )
        elif isinstance(action, Fetch):
            await _gap_fill(conn, state, action)
        elif isinstance(action, FetchChanges):
            await _changes_fill(conn, state, action)
        elif isinstance(action, Wait):
            conn.later(
                settings.LIMITS["MESSAGE_REORDER_WAIT_SECONDS"],
                {
                    "type": "push.event",
                    "event": GAP_DUE,
                    "conversation_id": action.conversation_id,
                    "token": action.token,
                },
            )


async def _gap_fill(conn: Connection, state: ConversationState, action: Fetch) -> None:
    cid = action.conversation_id
    rows = await db(selectors.messages_after_for_member)(
        user_id=conn.user_id,
        conversation_id=cid,
        after_seq=action.after_seq,
        upto_seq=action.upto_seq,
        limit=settings.LIMITS["RESUME_MAX_MESSAGES"],
    )
    if rows is None:
        await conversation_leave(conn, cid)  # removed, and the push saying so was lost
        return
    for row in rows:
        if state.sequencer.replayed(cid, row["seq"]):
            await conn.send_frame({"type": "message.new", "data": row})


async def _changes_fill(conn: Connection, state: ConversationState, action: FetchChanges) -> None:
    """Read the changes after the floor (a live one was lost or is late) and replay them.

    A changed message the client has not been given yet is read as a message instead, in
    its current state, with those before it (the gap fill), so its late ``message.new``
    is then a duplicate. Past the bound the client is told to re-read (``changes_too_far``).
    """
    cid = action.conversation_id
    limit = settings.LIMITS["RESUME_MAX_CHANGES"]
    read = await db(selectors.changes_after_for_member)(
        user_id=conn.user_id, conversation_id=cid, after_change_seq=action.after_change_seq,
        limit=limit,
    )  # fmt: skip
    if read is None:
        await conversation_leave(conn, cid)  # removed, and the push saying so was lost
        return
    rows, change_head = read
    cursor = state.sequencer.cursor(cid)
    if rows:
        await actions_perform(conn, state.sequencer.fetch_upto(cid, max(r["seq"] for r in rows)))
    state.sequencer.changes_fetched(cid, change_head)
    if len(rows) > limit:
        await changes_too_far_send(
            conn, conversation_id=cid, after_change_seq=action.after_change_seq,
            latest_change_seq=change_head,
        )  # fmt: skip
        return
    for row in rows:
        if cursor is None or row["seq"] <= cursor:
            await conn.send_frame({"type": "message.updated", "data": row})


async def changes_too_far_send(
    conn: Connection, *, conversation_id: int, after_change_seq: int, latest_change_seq: int
) -> None:
    await conn.send_frame(
        {
            "type": "sync.changes_too_far",
            "data": {
                "conversation_id": conversation_id,
                "after_change_seq": after_change_seq,
                "latest_change_seq": latest_change_seq,
            },
        }
    )


async def too_far_send(
    conn: Connection, *, conversation_id: int, after_seq: int, latest_seq: int
) -> None:
    await conn.send_frame(
        {
            "type": "sync.too_far",
            "data": {
                "conversation_id": conversation_id,
                "after_seq": after_seq,
                "latest_seq": latest_seq,
            },
        }
    )


async def synced_mark(conn: Connection) -> None:
    """Let live events flow; deliver, in turn, those that queued up before ``sync``."""
    sequencer = conn.state(ConversationState).sequencer
    for cid, seq, item in sequencer.mark_synced():
        await actions_perform(conn, sequencer.push(cid, seq, item))
    for cid, change_seq, seq, item in sequencer.presync_changes_take():
        await actions_perform(conn, sequencer.changed(cid, change_seq, seq, item))


@hook("connect", order=10)
async def conversations_subscribe(conn: Connection) -> None:
    """Listen to every conversation the user is in."""
    for cid in await selectors.aconversation_ids_for_user(user_id=conn.user_id):
        await conversation_join(conn, cid)


async def conversation_hears(conn: Connection, conversation_id: int, version: int | None) -> bool:
    """Whether this connection may receive an event of the conversation sent under
    ``version`` (``conversations.members``); one that may not stops listening to it (its
    user was removed and the push saying so was lost)."""
    if conversation_id not in conn.state(ConversationState).joined:
        return False
    if await amember_hears(conversation_id=conversation_id, user_id=conn.user_id, version=version):
        return True
    await conversation_leave(conn, conversation_id)
    return False


def conversation_hears_now(
    conn: Connection, conversation_id: int, version: int | None
) -> bool | None:
    """``conversation_hears`` without waiting: None when it would read the members, or
    when the answer is no and the socket must leave the conversation (which awaits)."""
    if conversation_id not in conn.state(ConversationState).joined:
        return False
    hears = member_hears_now(conversation_id=conversation_id, user_id=conn.user_id, version=version)
    return True if hears else None


def drop_unless_hears_now(
    conn: Connection, conversation_id: int, version: int | None
) -> bool | None:
    """An ``event_hook_now`` for an event of a conversation that is sent as it is to
    whoever hears it: False (send it), True (dropped), None (decide on the slow path)."""
    hears = conversation_hears_now(conn, conversation_id, version)
    return None if hears is None else not hears


@event_hook("message.new")
async def message_new(conn: Connection, message: dict[str, Any]) -> bool:
    """A sequenced event: through the sequencer, never straight to the socket."""
    state = conn.state(ConversationState)
    cid, seq = message["conversation_id"], message["seq"]
    if await conversation_hears(conn, cid, message.get("members_version", 0)):
        await actions_perform(conn, state.sequencer.push(cid, seq, message))
    return True


@event_hook(GAP_DUE)
async def message_gap_due(conn: Connection, message: dict[str, Any]) -> bool:
    """A gap's reorder wait is over: what came meanwhile is sent; what did not is read."""
    state = conn.state(ConversationState)
    await actions_perform(
        conn, state.sequencer.gap_due(message["conversation_id"], message["token"])
    )
    return True  # nothing for the client


@event_hook_now("message.new")
def message_new_now(conn: Connection, message: dict[str, Any]) -> bool | None:
    """``message_new`` for an idle socket, when neither a read nor a gap is in the way."""
    cid, seq = message["conversation_id"], message["seq"]
    hears = conversation_hears_now(conn, cid, message.get("members_version", 0))
    if not hears:
        return None if hears is None else True
    sequencer = conn.state(ConversationState).sequencer
    sends = sequencer.push_sends(cid, seq)
    if sends is None:
        return None  # a gap: read on the slow path
    if sends and not conn.send_event_now(message):
        return None  # the socket cannot take it now: nothing changed, queue it
    sequencer.push(cid, seq, message)  # moves the cursor (or holds it until sync, or drops)
    return True


@event_hook("message.updated")
async def message_updated(conn: Connection, message: dict[str, Any]) -> bool:
    """An edit or a deletion: for members only, as every event of a conversation, and
    through the sequencer's change floor (once, in change order, gaps read)."""
    data = message["data"]
    cid = data["conversation_id"]
    if await conversation_hears(conn, cid, message.get("members_version", 0)):
        await actions_perform(
            conn,
            conn.state(ConversationState).sequencer.changed(
                cid, data["change_seq"], data["seq"], message
            ),
        )
    return True


@event_hook_now("message.updated")
def message_updated_now(conn: Connection, message: dict[str, Any]) -> bool | None:
    """``message_updated`` for an idle socket, when it is the next change of a message the
    client holds."""
    data = message["data"]
    cid, change_seq, seq = data["conversation_id"], data["change_seq"], data["seq"]
    hears = conversation_hears_now(conn, cid, message.get("members_version", 0))
    if not hears:
        return None if hears is None else True
    sequencer = conn.state(ConversationState).sequencer
    sends = sequencer.changed_sends(cid, change_seq, seq)
    if sends is None:
        return None  # a read to make: on the slow path
    if sends and not conn.send_event_now(message):
        return None  # the socket cannot take it now: nothing changed, queue it
    sequencer.changed(cid, change_seq, seq, message)  # moves the floor (or holds it)
    return True


@event_hook("conversation.joined")
async def conversation_joined(conn: Connection, message: dict[str, Any]) -> bool:
    """Subscribe, then deliver what the conversation already has past the join."""
    data = message["data"]
    cid = data["conversation_id"]
    await conversation_join(conn, cid)
    await actions_perform(
        conn,
        conn.state(ConversationState).sequencer.joined(
            cid, data["last_seq"], data.get("last_change_seq")
        ),
    )
    return False  # and the client hears about it


@event_hook("conversation.left")
async def conversation_left(conn: Connection, message: dict[str, Any]) -> bool:
    await conversation_leave(conn, message["data"]["conversation_id"])
    return False


@event_hook("conversation.members")
async def conversation_members(conn: Connection, message: dict[str, Any]) -> bool:
    data = message["data"]
    if conn.user_id in data["removed"]:
        # Also here: if the `conversation.left` push is lost, the socket still stops
        # hearing a conversation it was removed from.
        await conversation_leave(conn, data["conversation_id"])
    return False
