"""Read markers ("read up to seq", one per member) and the unread counts they drive."""

import logging

from django.conf import settings
from django.db import transaction

from conversations.exceptions import Invalid
from conversations.models import Membership
from conversations.selectors import membership_get
from realtime.events import conversation_group, send_event, send_events, user_group
from switchboard.redis import bus, key

from .selectors import unread_counts

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
    membership = membership_get(user_id=user_id, conversation_id=conversation_id)
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
            )
    if moved:
        unread_push(user_ids=[user_id], conversation_id=conversation_id)
        current = target
    else:
        current = Membership.objects.get(pk=membership.pk).last_read_seq
    return {"conversation_id": conversation_id, "seq": current, "moved": bool(moved)}


def unread_push(*, user_ids: list[int], conversation_id: int) -> None:
    """Push each user their exact unread count in a conversation and in total.

    The version is taken *before* counting and after the change committed, so the event
    with the highest version was counted after every change it could have missed: a
    client that keeps the highest version it has seen ends on the true counts, whatever
    order concurrent pushes arrive in.
    """
    if not user_ids:
        return
    last = bus().incrby(key("unread", "version"), len(user_ids))
    counts = unread_counts(user_ids=user_ids)
    items = []
    for i, uid in enumerate(user_ids):
        per = counts.get(uid, {})
        items.append(
            {
                "event": "unread",
                "data": {
                    "conversation_id": conversation_id,
                    "unread": per.get(conversation_id, 0),
                    "total": sum(per.values()),
                    "version": last - len(user_ids) + 1 + i,
                },
                "groups": [user_group(uid)],
            }
        )
    send_events(items=items)  # one hand-off to the publisher for every member


def unread_on_message(*, conversation_id: int, sender_id: int) -> None:
    """After the current transaction commits a new message, push the other members' counts.

    Only in conversations of at most ``UNREAD_PUSH_MAX_MEMBERS``: there the work per message
    is bounded (two queries, one push per member). In bigger groups clients count
    ``message.new`` themselves (docs/subsystems/receipts.md).
    """
    transaction.on_commit(
        lambda: _unread_after_message(conversation_id=conversation_id, sender_id=sender_id)
    )


def _unread_after_message(*, conversation_id: int, sender_id: int) -> None:
    limit = settings.LIMITS["UNREAD_PUSH_MAX_MEMBERS"]
    try:
        members = list(
            Membership.objects.filter(conversation_id=conversation_id)
            .order_by("user_id")
            .values_list("user_id", flat=True)[: limit + 1]
        )
        if len(members) > limit:
            return
        unread_push(
            user_ids=[uid for uid in members if uid != sender_id], conversation_id=conversation_id
        )
    except Exception:  # the message is stored; counts are recomputed at the next change
        logger.exception("conversation=%s unread push failed", conversation_id)
