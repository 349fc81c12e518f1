"""Typing indicators: relayed to a conversation's members, never stored (issue #4)."""

from core.events import asend_event, conversation_group


async def atyping_send(*, user_id: int, conversation_id: int, typing: bool) -> None:
    """Tell the other members' connections that ``user_id`` started or stopped typing.

    One publish to the conversation group whatever its size, straight from the caller's
    event loop (nothing is stored, so no database thread is involved); the typist's own
    connections (all their devices) drop it (``except_user_id``). Membership is checked by
    the caller.
    """
    await asend_event(
        event="typing",
        data={"conversation_id": conversation_id, "user_id": user_id, "typing": typing},
        groups=[conversation_group(conversation_id)],
        except_user_id=user_id,
    )
