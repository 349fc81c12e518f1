"""Read markers ("read up to seq", one per member) and the unread counts they drive."""

import logging
import os
import threading
from typing import cast

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.dispatch import receiver

from conversations.models import Membership
from conversations.selectors import membership_get
from conversations.signals import message_stored
from core.errors import Invalid
from core.events import conversation_group, send_event, send_events, user_group
from core.redis import bus, key

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
    """Push each user their exact unread count in a conversation and in total."""
    unread_push_pairs(pairs=[(conversation_id, uid) for uid in user_ids])


def unread_push_pairs(*, pairs: list[tuple[int, int]]) -> None:
    """Push each (conversation, user) pair the user's exact unread count there and in total.

    The version is taken *before* counting and after the change committed, so the event
    with the highest version was counted after every change it could have missed: a
    client that keeps the highest version it has seen ends on the true counts, whatever
    order concurrent pushes arrive in. One ``INCRBY``, one query and one hand-off to the
    publisher for all the pairs.
    """
    if not pairs:
        return
    # redis-py types a command for both clients (``Awaitable[T] | T``); sync ones return T.
    last = cast(int, bus().incrby(key("unread", "version"), len(pairs)))
    counts = unread_counts(user_ids=sorted({uid for _, uid in pairs}))
    items = []
    for i, (cid, uid) in enumerate(pairs):
        per = counts.get(uid, {})
        items.append(
            {
                "event": "unread",
                "data": {
                    "conversation_id": cid,
                    "unread": per.get(cid, 0),
                    "total": sum(per.values()),
                    "version": last - len(pairs) + 1 + i,
                },
                "groups": [user_group(uid)],
            }
        )
    send_events(items=items)  # one hand-off to the publisher for every member


@receiver(message_stored)
def unread_on_message(*, conversation_id: int, sender_id: int, **_signal: object) -> None:
    """After the current transaction commits a new message, push the other members' counts.

    Only in conversations of at most ``UNREAD_PUSH_MAX_MEMBERS``: there the work per message
    is bounded. In bigger groups clients count ``message.new`` themselves
    (docs/subsystems/receipts.md). The work is not done on the sender's path: the commit
    hands the conversation to this process' unread pusher (``_pusher``), which counts and
    pushes for every conversation handed to it since its last round, in two queries.
    """
    transaction.on_commit(lambda: _pusher.add(conversation_id, sender_id))


class _UnreadPusher:
    """One thread per process that pushes unread counts after messages, a batch per round.

    While a round runs, new messages accumulate, so under load one round serves many
    messages (one membership query, one count query, one ``INCRBY``, one hand-off to the
    publisher); when idle, a message is pushed as soon as the thread wakes. Counts are
    exact whenever they are pushed (``unread_push_pairs``). A push lost to a crash is
    repaired by the next change in that conversation, as before.
    """

    def __init__(self) -> None:
        self._after_fork()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        # A forked child has none of the parent's threads: start afresh (and never inherit
        # a lock some parent thread held at the fork).
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: dict[int, set[int]] = {}  # conversation id -> its senders
        self._thread: threading.Thread | None = None

    def add(self, conversation_id: int, sender_id: int) -> None:
        with self._lock:
            self._pending.setdefault(conversation_id, set()).add(sender_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="unread-push", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                batch, self._pending = self._pending, {}
            if not batch:
                continue
            try:
                _unread_after_messages(batch)
            except Exception:  # the messages are stored; counts are redone at the next change
                logger.exception("unread push failed for conversations %s", sorted(batch))
            finally:
                close_old_connections()  # as at the end of a request: honour CONN_MAX_AGE


_pusher = _UnreadPusher()


def _unread_after_messages(batch: dict[int, set[int]]) -> None:
    """Push the members of each small conversation in ``batch`` their counts.

    A member is skipped only when they sent every message of the batch in that
    conversation: their own messages never change their count.
    """
    table = Membership._meta.db_table
    cids = sorted(batch)
    marks = ", ".join(["%s"] * len(cids))
    sql = (
        f"SELECT conversation_id, user_id FROM {table} WHERE conversation_id IN ("
        f"SELECT conversation_id FROM {table} WHERE conversation_id IN ({marks}) "
        f"GROUP BY conversation_id HAVING COUNT(*) <= %s) ORDER BY conversation_id, user_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*cids, settings.LIMITS["UNREAD_PUSH_MAX_MEMBERS"]])
        rows = cursor.fetchall()
    unread_push_pairs(pairs=[(cid, uid) for cid, uid in rows if batch[cid] != {uid}])
