"""Reads of presence, read markers and unread counts."""

from datetime import UTC, datetime
from typing import cast

from django.conf import settings
from django.db import connection

from conversations.models import Conversation, Membership, Message
from conversations.selectors import contact_ids_among, membership_accepted_get
from core.db import LoopConnection, db, loop_fetch
from core.redis import abus, bus, key
from profiles.models import Profile
from relations.models import Block


def users_key() -> str:
    """Sorted set uid -> deadline; a member is announced online (lua/touch.lua)."""
    return key("presence", "users")


def seen_key() -> str:
    """Hash uid -> last activity of users announced online."""
    return key("presence", "seen")


def conns_key(user_id: int | str) -> str:
    """Sorted set of one user's connection ids -> expiry."""
    return key("presence", "conns", user_id)


def seen_write_key(user_id: int | str) -> str:
    """Exists while a recent ``Profile.last_seen`` write throttles the next one."""
    return key("presence", "seenw", user_id)


def timestamp_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def contact_ids(*, user_id: int) -> list[int]:
    """Return the users who get ``user_id``'s presence: their contacts in their smaller
    conversations.

    Contacts (design principle 11): both memberships accepted, and neither blocked the
    other; presence flows between contacts only, both ways. Conversations above
    ``PRESENCE_PUSH_MAX_MEMBERS`` members do not count: pushing to all of a 1,000-member
    group on every transition is the quadratic case issue #4 rules out. One query (it runs
    at every first connection): the user's accepted memberships by the ``user_id`` index,
    each conversation's size counted by the ``conversation_id`` index, the other accepted
    members of the small ones, each probed for a block by the pair's unique index. Portable
    SQL (SQLite too).
    """
    with connection.cursor() as cursor:
        cursor.execute(_contacts_sql(), _contacts_params(user_id))
        return [row[0] for row in cursor.fetchall()]


async def acontact_ids(*, user_id: int) -> list[int]:
    """``contact_ids`` from the event loop: the same statement, no thread hop."""
    if not LoopConnection.available():
        return await db(contact_ids)(user_id=user_id)
    return [row[0] for row in await loop_fetch(_contacts_sql(), _contacts_params(user_id))]


def _contacts_sql() -> str:
    table = Membership._meta.db_table
    block = Block._meta.db_table
    return (
        f"SELECT DISTINCT o.user_id FROM {table} me "
        f"JOIN {table} o ON o.conversation_id = me.conversation_id "
        f"WHERE me.user_id = %s AND me.state = 'accepted' AND o.user_id <> %s "
        f"AND o.state = 'accepted' "
        f"AND (SELECT COUNT(*) FROM {table} n WHERE n.conversation_id = me.conversation_id) <= %s "
        f"AND NOT EXISTS (SELECT 1 FROM {block} b WHERE (b.blocker_id = %s "
        f"AND b.blocked_id = o.user_id) OR (b.blocked_id = %s AND b.blocker_id = o.user_id)) "
        f"ORDER BY o.user_id"
    )


def _contacts_params(user_id: int) -> list[int]:
    limit = settings.LIMITS["PRESENCE_PUSH_MAX_MEMBERS"]
    return [user_id, user_id, limit, user_id, user_id]


def visible_user_ids(*, user_id: int, user_ids: list[int]) -> set[int]:
    """Return those of ``user_ids`` whose presence and ``last_seen`` ``user_id`` may see:
    their contacts (in a conversation of any size; ``conversations.selectors``), and
    themselves."""
    visible = contact_ids_among(user_id=user_id, user_ids=[u for u in user_ids if u != user_id])
    if user_id in user_ids:
        visible.add(user_id)
    return visible


def online_ids(*, user_ids: list[int]) -> set[int]:
    """Return those of ``user_ids`` announced online (one ZMSCORE)."""
    if not user_ids:
        return set()
    # redis-py types a command for both clients (``Awaitable[T] | T``); sync ones return T.
    # Its hint wants str members; it encodes ints like any other argument.
    name = users_key()
    reply = bus(name).zmscore(name, user_ids)  # type: ignore[arg-type]
    scores = cast(list[float | None], reply)
    return {uid for uid, score in zip(user_ids, scores, strict=True) if score is not None}


async def aonline_ids(*, user_ids: list[int]) -> set[int]:
    """``online_ids`` from the event loop."""
    if not user_ids:
        return set()
    name = users_key()
    scores = await abus(name).zmscore(name, user_ids)  # type: ignore[arg-type]
    return {uid for uid, score in zip(user_ids, scores, strict=True) if score is not None}


def presence_get(*, user_ids: list[int]) -> list[dict]:
    """Return ``{user_id, online, last_seen}`` for each user, in the order given."""
    online = online_ids(user_ids=user_ids)
    seen = (
        dict(
            zip(
                user_ids,
                cast(list[str | None], bus(seen_key()).hmget(seen_key(), user_ids)),
                strict=True,
            )
        )
        if online
        else {}
    )
    offline = [uid for uid in user_ids if uid not in online]
    stored = dict(Profile.objects.filter(user_id__in=offline).values_list("user_id", "last_seen"))
    out = []
    for uid in user_ids:
        if uid in online:
            ts = seen.get(uid)
            last_seen = timestamp_iso(float(ts)) if ts else None
        else:
            at = stored.get(uid)
            last_seen = at.isoformat() if at else None
        out.append({"user_id": uid, "online": uid in online, "last_seen": last_seen})
    return out


def read_markers(*, user_id: int, conversation_id: int) -> dict:
    """Return every member's read marker in a conversation I have accepted."""
    membership = membership_accepted_get(user_id=user_id, conversation_id=conversation_id)
    rows = (
        Membership.objects.filter(conversation_id=conversation_id)
        .order_by("user_id")
        .values_list("user_id", "last_read_seq")
    )
    return {
        "conversation_id": conversation_id,
        "last_seq": membership.conversation.last_seq,
        "markers": [{"user_id": uid, "seq": seq} for uid, seq in rows],
    }


def unread_counts(*, user_ids: list[int]) -> dict[int, dict[int, int]]:
    """Return ``{user_id: {conversation_id: unread}}`` (non-zero only) in one query.

    Unread = messages after the member's marker, not deleted, not sent by the member: the
    same rule as ``conversations.selectors.conversation_list``. Requests and invitations not
    accepted yet do not count. Portable SQL (SQLite too).
    """
    if not user_ids:
        return {}
    placeholders = ", ".join(["%s"] * len(user_ids))
    sql = (
        f"SELECT mb.user_id, mb.conversation_id, COUNT(*) "
        f"FROM {Membership._meta.db_table} mb "
        f"JOIN {Message._meta.db_table} msg ON msg.conversation_id = mb.conversation_id "
        f"AND msg.seq > mb.last_read_seq "
        f"WHERE mb.user_id IN ({placeholders}) AND mb.state = 'accepted' "
        f"AND msg.deleted_at IS NULL "
        f"AND (msg.sender_id IS NULL OR msg.sender_id <> mb.user_id) "
        f"GROUP BY mb.user_id, mb.conversation_id"
    )
    out: dict[int, dict[int, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, list(user_ids))
        for uid, cid, n in cursor.fetchall():
            out.setdefault(uid, {})[cid] = n
    return out


def unread_snapshot(*, user_id: int) -> tuple[dict[int, int], dict[int, int]]:
    """Return ``({conversation: unread}, {conversation: last_seq})`` for one user, in one
    statement: each count covers exactly the messages up to that ``last_seq``. Accepted
    conversations only."""
    member = Membership._meta.db_table
    conv = Conversation._meta.db_table
    msg = Message._meta.db_table
    sql = (
        f"SELECT mb.conversation_id, c.last_seq, (SELECT COUNT(*) FROM {msg} m "
        f"WHERE m.conversation_id = mb.conversation_id AND m.seq > mb.last_read_seq "
        f"AND m.seq <= c.last_seq AND m.deleted_at IS NULL "
        f"AND (m.sender_id IS NULL OR m.sender_id <> mb.user_id)) "
        f"FROM {member} mb JOIN {conv} c ON c.id = mb.conversation_id WHERE mb.user_id = %s "
        f"AND mb.state = 'accepted'"
    )
    unread: dict[int, int] = {}
    heads: dict[int, int] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id])
        for cid, last_seq, n in cursor.fetchall():
            heads[cid] = last_seq
            if n:
                unread[cid] = n
    return unread, heads


def unread_summary(*, user_id: int) -> dict:
    """Return my total unread and the conversations that have unread messages."""
    per = unread_counts(user_ids=[user_id]).get(user_id, {})
    limit = settings.LIMITS["CONVERSATION_LIST_MAX"]
    listed = sorted(per.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return {
        "total": sum(per.values()),
        "conversations": [{"conversation_id": cid, "unread": n} for cid, n in listed],
    }
