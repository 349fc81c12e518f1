"""Who may hear a conversation, as one server process knows it: checked on every delivery.

A socket listens to a conversation from the moment it joins its group until a
``conversation.left`` (or ``conversation.members``) push makes it leave. That push is a
doorbell and can be lost (a Redis blip): a removed member would keep hearing the group.
So delivery does not depend on it. Every change of a conversation's members moves its
``members_version`` up in the same transaction (``conversations.services``), and every
event sent to a conversation carries the version it was sent under. A process keeps one
copy of each conversation's members with the version it read them at; an event with a
newer version makes it read them again (one statement for the whole process, however
many of its sockets are waiting on that event), and a socket whose user is not among them
stops listening.

- ``message.new`` carries the version it was stored under (read under the row lock that
  also hands out its seq), edits and read receipts the one their sender's membership was
  read with. A conversation whose members never changed (version 0) needs no copy at all:
  everyone who joined its group was an accepted member.
- Typing stores nothing and carries no version. A group's typing is checked against a copy
  at most ``MEMBERS_RECHECK_SECONDS`` old; a direct conversation's accepted members are never
  removed (only a pending one can decline), so a copy that has the user serves until it is
  evicted (a user who is not in it is only refused on a copy as fresh as that).

Members here are the accepted ones: pending members (requests, invitations) hear nothing
of the conversation until they accept, which moves the version too.

The copies are bounded by ``MEMBERS_CACHE_MAX_IDS`` member ids per process (the oldest
copies go first).
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from core.db import LoopConnection, db, loop_fetch
from core.loop import per_loop

from .models import Conversation, Membership


@dataclass(frozen=True)
class Members:
    """A conversation's members as read at ``version`` (``read_at``: monotonic seconds)."""

    kind: str
    version: int
    user_ids: frozenset[int]
    read_at: float


_copies: dict[int, Members] = {}
_held_ids = 0
# Reads in flight, per event loop and conversation: a fan-out's sockets wait on one read.
_reading: "Callable[[], dict[int, asyncio.Future[Members | None]]]" = per_loop(dict)


def members_read(conversation_id: int) -> tuple[str, int, list[int]] | None:
    """The conversation's kind, members version and member ids, read together (or None)."""
    conversation = (
        Conversation.objects.filter(pk=conversation_id).values_list("kind", "members_version")
    ).first()
    if conversation is None:
        return None
    ids = list(
        Membership.objects.filter(
            conversation_id=conversation_id, state=Membership.State.ACCEPTED
        ).values_list("user_id", flat=True)
    )
    return conversation[0], conversation[1], ids


async def _aread(conversation_id: int) -> tuple[str, int, list[int]] | None:
    if not LoopConnection.available():
        return await db(members_read)(conversation_id)
    # One statement: the version and the members are of the same snapshot.
    sql = (
        f"SELECT c.kind, c.members_version, "
        f"ARRAY(SELECT m.user_id FROM {Membership._meta.db_table} m "
        f"WHERE m.conversation_id = c.id AND m.state = 'accepted') "
        f"FROM {Conversation._meta.db_table} c WHERE c.id = %(cid)s"
    )
    rows = await loop_fetch(sql, {"cid": conversation_id})
    if not rows:
        return None
    kind, version, ids = rows[0]
    return kind, version, ids


def _keep(conversation_id: int, members: Members) -> None:
    global _held_ids
    old = _copies.pop(conversation_id, None)
    if old is not None:
        _held_ids -= len(old.user_ids)
    limit = settings.LIMITS["MEMBERS_CACHE_MAX_IDS"]
    while _copies and _held_ids + len(members.user_ids) > limit:
        _held_ids -= len(_copies.pop(next(iter(_copies))).user_ids)  # the oldest copy
    _copies[conversation_id] = members
    _held_ids += len(members.user_ids)


async def _fresh(conversation_id: int) -> Members | None:
    """Read the members again; concurrent callers on one loop share the read."""
    reading = _reading()
    pending = reading.get(conversation_id)
    if pending is not None:
        return await asyncio.shield(pending)
    future: asyncio.Future[Members | None] = asyncio.get_running_loop().create_future()
    reading[conversation_id] = future
    try:
        row = await _aread(conversation_id)
        members = None
        if row is not None:
            kind, version, ids = row
            members = Members(kind, version, frozenset(ids), time.monotonic())
            _keep(conversation_id, members)
        else:
            _forget(conversation_id)
        future.set_result(members)
        return members
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: the waiters re-raise it, nobody else must
        raise
    finally:
        reading.pop(conversation_id, None)


def _forget(conversation_id: int) -> None:
    global _held_ids
    old = _copies.pop(conversation_id, None)
    if old is not None:
        _held_ids -= len(old.user_ids)


def member_hears_now(*, conversation_id: int, user_id: int, version: int | None) -> bool | None:
    """``amember_hears`` without a read: None when the process' copy cannot tell."""
    if version == 0:
        return True  # the members never changed: whoever listens was let in as one
    copy = _copies.get(conversation_id)
    if copy is None:
        return None
    if version is not None:
        return (user_id in copy.user_ids) if copy.version >= version else None
    if user_id in copy.user_ids and copy.kind == Conversation.Kind.DIRECT:
        return True
    if time.monotonic() - copy.read_at <= settings.LIMITS["MEMBERS_RECHECK_SECONDS"]:
        return user_id in copy.user_ids
    return None


async def amember_hears(*, conversation_id: int, user_id: int, version: int | None) -> bool:
    """Whether ``user_id`` may receive an event of the conversation sent under ``version``.

    ``version`` None: an event that carries none (typing), checked against a copy recent
    enough (see the module's text).
    """
    known = member_hears_now(conversation_id=conversation_id, user_id=user_id, version=version)
    if known is not None:
        return known
    copy = await _fresh(conversation_id)
    return copy is not None and user_id in copy.user_ids


def members_copies_clear() -> None:
    """Forget every copy (tests that change members behind the services' back)."""
    global _held_ids
    _copies.clear()
    _held_ids = 0
