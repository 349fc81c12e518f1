"""Typing indicators: relayed to a conversation's members, never stored (issue #4)."""

from realtime.events import conversation_group, send_event


def typing_send(*, user_id: int, conversation_id: int, typing: bool) -> None:
    """Tell the other members' connections that ``user_id`` started or stopped typing.

    One publish to the conversation group whatever its size; the typist's own connections
    (all their devices) drop it (``except_user_id``). Membership is checked by the caller.
    """
    send_event(
        event="typing",
        data={"conversation_id": conversation_id, "user_id": user_id, "typing": typing},
        groups=[conversation_group(conversation_id)],
        except_user_id=user_id,
    )
