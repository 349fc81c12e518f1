"""Read markers ("read up to seq", one per member) and the unread counts they drive.

Unread counts are pushed when a reader's marker moves, never per message: clients count the
``message.new`` from others after the count they were given (docs/subsystems/receipts.md).
"""

import logging
from typing import cast

from django.db import transaction

from conversations.models import Membership
from conversations.selectors import membership_accepted_get
from core.errors import Invalid
from core.events import conversation_group, send_event, user_group
from core.redis import bus, key

from .selectors import unread_snapshot

logger = logging.getLogger(__name__)


def _int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid(f"{name} must be an integer.")
    return value


def read_mark(*, user_id: int, conversation_id: object, seq: object) -> dict:
    """Move my read marker forward to ``seq`` (clamped to the last seq); never backwards.

    The ``UPDATE ... WHERE last_read_seq < seq`` is the whole guarantee: concurrent marks
    from several devices leave the highest one, and a stale one changes nothing.
    """
    conversation_id = _int(conversation_id, "conversation_id")
    seq = _int(seq, "seq")
    if seq < 0:
        raise Invalid("seq must be >= 0.")
    membership = membership_accepted_get(user_id=user_id, conversation_id=conversation_id)
    # last_seq only grows, so clamping to this (maybe already stale) value never lets a
    # marker pass the conversation's real last message.
    target = min(seq, membership.conversation.last_seq)
    with transaction.atomic():
        moved = Membership.objects.filter(pk=membership.pk, last_read_seq__lt=target).update(
            last_read_seq=target
        )
        if moved:
            send_event(
                event="read",
                data={"user_id": user_id, "conversation_id": conversation_id, "seq": target},
                groups=[conversation_group(conversation_id)],
                members_version=membership.conversation.members_version,
            )
    if moved:
        unread_push(user_id=user_id, conversation_id=conversation_id)
        current = target
    else:
        current = Membership.objects.get(pk=membership.pk).last_read_seq
    return {"conversation_id": conversation_id, "seq": current, "moved": bool(moved)}


def unread_push(*, user_id: int, conversation_id: int) -> None:
    """Push a reader's devices their exact unread count in a conversation and in total.

    Counted in one statement with the conversation's ``last_seq`` as of that count: a client
    adds the ``message.new`` from others with a larger seq to it (docs/protocol.md, "unread"),
    so messages sent after the count are neither missed nor counted twice. The version is
    taken *before* counting and after the change committed: the event with the highest
    version was counted after every change it could have missed.
    """
    # redis-py types a command for both clients (``Awaitable[T] | T``); sync ones return T.
    name = key("unread", "version")
    version = cast(int, bus(name).incr(name))
    unread, heads = unread_snapshot(user_id=user_id)
    send_event(
        event="unread",
        data={
            "conversation_id": conversation_id,
            "unread": unread.get(conversation_id, 0),
            "total": sum(unread.values()),
            "last_seq": heads.get(conversation_id, 0),
            "version": version,
        },
        groups=[user_group(user_id)],
    )
