"""The one way to push an event to users' connections.

Services call ``send_event`` inside their transaction; the push happens after the commit
(``transaction.on_commit``), so nobody is told about a row that may still roll back. The
channel layer is a doorbell, not a mailbox: delivery is at most once, and completeness comes
from sequence numbers and the database (docs/subsystems/messaging.md).
"""

import logging
from typing import Any

import redis
from channels.layers import get_channel_layer
from django.db import transaction

from .event_schema import event_validate
from .loop import loop_run

logger = logging.getLogger(__name__)
# Rate-limited in settings.LOGGING: while the bus is away every push fails alike (a line per
# interval, not a traceback per message batch).
outage_logger = logging.getLogger("core.events.outage")
BUS_AWAY = (redis.ConnectionError, redis.TimeoutError)


def _push_failed(exc: Exception, batch: list[tuple[list[str], dict[str, Any]]]) -> None:
    """Log a push that failed: the doorbell; resume and gap fill recover from the database."""
    events = [m["event"] for _, m in batch]
    if isinstance(exc, BUS_AWAY):
        outage_logger.error("events=%s push failed, the bus is away: %r", events, exc)
    else:
        logger.error("events=%s push failed", events, exc_info=exc)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def conversation_group(conversation_id: int) -> str:
    return f"conv.{conversation_id}"


def send_event(
    *,
    event: str,
    data: dict[str, Any],
    groups: list[str],
    conversation_id: int | None = None,
    seq: int | None = None,
    except_user_id: int | None = None,
    members_version: int | None = None,
) -> None:
    """Push ``event`` to every connection in ``groups`` once the transaction commits.

    ``conversation_id`` and ``seq`` mark a sequenced event: connections deliver those in
    order per conversation, drop duplicates and fill gaps from the database.
    ``except_user_id``: that user's connections drop the event (typing: one publish to the
    conversation group instead of one per member). ``members_version``: the version of a
    conversation's members the event was sent under (a conversation's events are checked
    against its members on delivery, ``conversations.members``).
    """
    send_events(
        items=[
            {
                "event": event,
                "data": data,
                "groups": groups,
                "conversation_id": conversation_id,
                "seq": seq,
                "except_user_id": except_user_id,
                "members_version": members_version,
            }
        ]
    )


def _message(item: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Validate one event (``send_event``'s keyword arguments); return groups and message."""
    event_validate(item["event"], item["data"])
    message = {
        "type": "push.event",
        "event": item["event"],
        "data": item["data"],
        "conversation_id": item.get("conversation_id"),
        "seq": item.get("seq"),
    }
    if item.get("except_user_id") is not None:
        message["except_user_id"] = item["except_user_id"]
    if item.get("members_version") is not None:
        message["members_version"] = item["members_version"]
    return item["groups"], message


def send_events(*, items: list[dict[str, Any]]) -> None:
    """Push several events (each the keyword arguments of ``send_event``) in one hand-off.

    One hop to the publishing loop for the lot instead of one per event: a service that
    tells every member of a conversation something different (unread counts) pays once.
    """
    batch = [_message(item) for item in items]
    if batch:
        transaction.on_commit(lambda: _publish(batch))


async def asend_event(
    *, event: str, data: dict[str, Any], groups: list[str], except_user_id: int | None = None
) -> None:
    """``send_event`` for async code that stores nothing (typing): publish now, from this loop.

    No transaction to wait for, so no thread hop to the ORM pool and none to the publishing
    loop: one ``PUBLISH`` per group from the caller's event loop. Failures are logged, not
    raised, as for ``send_event`` (the channel layer is a doorbell).
    """
    groups, message = _message(
        {"event": event, "data": data, "groups": groups, "except_user_id": except_user_id}
    )
    batch = [(groups, message)]
    try:
        await _group_send_all(batch)
    except Exception as exc:
        _push_failed(exc, batch)


async def asend_events(*, items: list[dict[str, Any]]) -> None:
    """``send_events`` for async code whose changes are already committed: publish now.

    From the caller's loop (the message path's writer publishes a stored batch from the loop
    that owns the sockets: no thread hop). Failures are logged, not raised.
    """
    batch = [_message(item) for item in items]
    try:
        await _group_send_all(batch)
    except Exception as exc:
        _push_failed(exc, batch)


def _publish(batch: list[tuple[list[str], dict[str, Any]]]) -> None:
    # Not async_to_sync: from a Celery worker it would open and close an event loop per
    # call, stranding channels_redis pools on dead loops (core/loop.py says more).
    try:
        loop_run(_group_send_all, batch)
    except Exception as exc:
        _push_failed(exc, batch)


async def _group_send_all(batch: list[tuple[list[str], dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    pairs = [(group, message) for groups, message in batch for group in groups]
    many = getattr(layer, "group_send_many", None)  # core.layer's, one round trip per shard
    if many is not None and len(pairs) > 1:
        await many(pairs)
        return
    for group, message in pairs:
        await layer.group_send(group, message)
