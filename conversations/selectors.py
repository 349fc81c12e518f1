"""Reads of conversations and messages."""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from core.batches import Reads
from core.db import LoopConnection, db, loop_fetch
from core.errors import Forbidden, Invalid, NotAccepted, NotFound
from core.loop import per_loop
from relations.models import Block

from .models import Conversation, Membership, Message

ACCEPTED = Membership.State.ACCEPTED
PENDING = Membership.State.PENDING


def message_serialize(message: Message) -> dict:
    """Return a message as it appears on the wire (REST and WebSocket alike)."""
    deleted = message.deleted_at is not None
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "sender_id": message.sender_id,
        "body": "" if deleted else message.body,
        "client_id": message.client_id,
        "created_at": message.created_at.isoformat(),
        "edited_at": message.edited_at.isoformat() if message.edited_at else None,
        "deleted": deleted,
        "change_seq": message.change_seq,
    }


def membership_get(*, user_id: int, conversation_id: int) -> Membership:
    """Return the user's membership, or raise NotFound / Forbidden."""
    membership = (
        Membership.objects.select_related("conversation")
        .filter(conversation_id=conversation_id, user_id=user_id)
        .first()
    )
    if membership is None:
        if not Conversation.objects.filter(pk=conversation_id).exists():
            raise NotFound("No such conversation.")
        raise Forbidden("You are not a member of this conversation.")
    return membership


def membership_accepted_get(*, user_id: int, conversation_id: int) -> Membership:
    """Return the user's accepted membership, or raise NotFound / Forbidden / NotAccepted.

    Everything but reading and deciding (sending, marking read, typing, read markers) needs
    an accepted membership: a pending one is a request or an invitation.
    """
    membership = membership_get(user_id=user_id, conversation_id=conversation_id)
    if membership.state != ACCEPTED:
        raise NotAccepted("Accept this conversation first.")
    return membership


def contact_ids_among(*, user_id: int, user_ids: list[int] | set[int]) -> set[int]:
    """Return those of ``user_ids`` who are ``user_id``'s contacts: they share a conversation
    (of any size) in which both memberships are accepted, and neither blocked the other."""
    if not user_ids:
        return set()
    mine = Membership.objects.filter(user_id=user_id, state=ACCEPTED).values("conversation_id")
    shared = set(
        Membership.objects.filter(conversation_id__in=mine, user_id__in=user_ids, state=ACCEPTED)
        .exclude(user_id=user_id)
        .values_list("user_id", flat=True)
        .distinct()
    )
    if not shared:
        return shared
    return shared - blocked_among(user_id=user_id, user_ids=shared)


def blocked_among(*, user_id: int, user_ids: list[int] | set[int]) -> set[int]:
    """Return those of ``user_ids`` that ``user_id`` blocked or was blocked by."""
    pairs = Block.objects.filter(
        Q(blocker_id=user_id, blocked_id__in=user_ids)
        | Q(blocked_id=user_id, blocker_id__in=user_ids)
    ).values_list("blocker_id", "blocked_id")
    return {blocked if blocker == user_id else blocker for blocker, blocked in pairs}


# The columns of a message in the written-out reads, in ``message_row_serialize``'s order.
MESSAGE_COLUMNS = (
    "{m}.id, {m}.seq, {m}.sender_id, {m}.body, {m}.client_id, {m}.created_at, {m}.edited_at, "
    "{m}.deleted_at, {m}.change_seq"
)


def message_row_serialize(conversation_id: int, row: Sequence[Any]) -> dict:
    """The wire form of a message read as ``MESSAGE_COLUMNS`` (the written-out reads of the
    message path)."""
    pk, seq, sender_id, body, client_id, created_at, edited_at, deleted_at, change_seq = row
    return message_serialize(
        Message(
            pk=pk,
            conversation_id=conversation_id,
            seq=seq,
            sender_id=sender_id,
            body=body,
            client_id=client_id,
            created_at=created_at,
            edited_at=edited_at,
            deleted_at=deleted_at,
            change_seq=change_seq,
        )
    )


def conversation_ids_for_user(*, user_id: int) -> list[int]:
    """Return the ids of every conversation the user has accepted (a socket hears those)."""
    return list(
        Membership.objects.filter(user_id=user_id, state=ACCEPTED).values_list(
            "conversation_id", flat=True
        )
    )


async def aconversation_ids_for_user(*, user_id: int) -> list[int]:
    """``conversation_ids_for_user`` from the event loop: one read, no thread hop."""
    if not LoopConnection.available():
        return await db(conversation_ids_for_user)(user_id=user_id)
    return list(await _memberships_reads().get(user_id))


async def _memberships_read(user_ids: list[int]) -> dict[int, tuple[int, ...]]:
    """The accepted conversations of many users in one statement (the sockets opening
    together, ``core.batches.Reads``)."""
    sql = (
        f"SELECT user_id, array_agg(conversation_id) FROM {Membership._meta.db_table} "
        f"WHERE user_id = ANY(%(uids)s) AND state = 'accepted' GROUP BY user_id"
    )
    return {uid: tuple(cids) for uid, cids in await loop_fetch(sql, {"uids": user_ids})}


def _memberships_reads_new() -> "Reads[int, tuple[int, ...]]":
    return Reads(_memberships_read, ())


_memberships_reads = per_loop(_memberships_reads_new)


def conversation_state_parse(raw: object) -> str:
    """Return a membership state from a request (``accepted`` when absent), or raise."""
    if raw is None or raw == "":
        return ACCEPTED
    if raw not in Membership.State.values:
        raise Invalid("state must be 'accepted' or 'pending'.")
    return str(raw)


def conversation_list(
    *,
    user_id: int,
    state: str = ACCEPTED,
    limit: int | None = None,
    conversation_ids: Sequence[int] | None = None,
) -> list[dict]:
    """Return my conversations in ``state`` (accepted: my list; pending: my requests and
    invitations), most recently active first, with last message and unread; only those of
    ``conversation_ids`` when given (``sync``'s list of what the client did not name)."""
    limit = min(
        limit or settings.LIMITS["CONVERSATION_LIST_MAX"], settings.LIMITS["CONVERSATION_LIST_MAX"]
    )
    memberships = Membership.objects.filter(user_id=user_id, state=state)
    if conversation_ids is not None:
        memberships = memberships.filter(conversation_id__in=list(conversation_ids))
    unread = (
        Message.objects.filter(
            conversation_id=OuterRef("conversation_id"),
            seq__gt=OuterRef("last_read_seq"),
            deleted_at__isnull=True,
        )
        .exclude(sender_id=user_id)
        .order_by()
        .values("conversation_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = list(
        memberships.select_related("conversation")
        .annotate(unread=Coalesce(Subquery(unread), 0))
        .order_by(F("conversation__last_message_at").desc(nulls_last=True), "-conversation_id")[
            :limit
        ]
    )
    conv_ids = [m.conversation_id for m in rows]
    last = {
        m.conversation_id: m
        for m in Message.objects.filter(
            conversation_id__in=conv_ids,
            seq=Subquery(
                Conversation.objects.filter(pk=OuterRef("conversation_id")).values("last_seq")
            ),
        )
    }
    members: dict[int, list[int]] = {}
    for cid, uid in Membership.objects.filter(conversation_id__in=conv_ids).values_list(
        "conversation_id", "user_id"
    ):
        members.setdefault(cid, []).append(uid)
    return [
        {
            **conversation_serialize(m.conversation),
            "role": m.role,
            "state": m.state,
            "invited_by": m.invited_by_id,
            "member_ids": sorted(members.get(m.conversation_id, [])),
            "last_read_seq": m.last_read_seq,
            "unread": m.unread,
            "last_message": (
                message_serialize(last[m.conversation_id]) if m.conversation_id in last else None
            ),
        }
        for m in rows
    ]


def conversation_serialize(conversation: Conversation) -> dict:
    return {
        "id": conversation.pk,
        "kind": conversation.kind,
        "title": conversation.title,
        "last_seq": conversation.last_seq,
        "last_change_seq": conversation.last_change_seq,
        "last_message_at": (
            conversation.last_message_at.isoformat() if conversation.last_message_at else None
        ),
    }


def conversation_get(*, user_id: int, conversation_id: int) -> dict:
    """Return one conversation I belong to, with its members and roles."""
    membership = membership_get(user_id=user_id, conversation_id=conversation_id)
    members = list(
        Membership.objects.filter(conversation_id=conversation_id)
        .order_by("joined_at", "user_id")
        .values("user_id", "role", "state", "last_read_seq")
    )
    return {
        **conversation_serialize(membership.conversation),
        "role": membership.role,
        "state": membership.state,
        "invited_by": membership.invited_by_id,
        "members": members,
    }


def message_history(
    *,
    user_id: int,
    conversation_id: int,
    before_seq: int | None = None,
    after_seq: int | None = None,
    around_seq: int | None = None,
    limit: int | None = None,
) -> dict:
    """Return a page of messages by seq; stable while new messages arrive.

    ``after_seq`` pages forward (oldest first); ``before_seq`` (or neither: the newest)
    pages backward; ``around_seq`` is the page with that seq in its middle (a search
    result's context), with ``has_newer`` too. Pages are always returned in ascending seq.
    A pending member reads them too: a request's messages are what they decide on.
    """
    membership_get(user_id=user_id, conversation_id=conversation_id)
    limit = max(
        1,
        min(limit or settings.LIMITS["HISTORY_PAGE_DEFAULT"], settings.LIMITS["HISTORY_PAGE_MAX"]),
    )
    qs = Message.objects.filter(conversation_id=conversation_id)
    if around_seq is not None:
        older = list(qs.filter(seq__lt=around_seq).order_by("-seq")[: limit // 2 + 1])
        newer = list(qs.filter(seq__gte=around_seq).order_by("seq")[: limit - limit // 2 + 1])
        has_more = len(older) > limit // 2
        has_newer = len(newer) > limit - limit // 2
        rows = list(reversed(older[: limit // 2])) + newer[: limit - limit // 2]
        return {
            "messages": [message_serialize(m) for m in rows],
            "has_more": has_more,
            "has_newer": has_newer,
        }
    if after_seq is not None:
        rows = list(qs.filter(seq__gt=after_seq).order_by("seq")[: limit + 1])
        has_more = len(rows) > limit
        rows = rows[:limit]
    else:
        if before_seq is not None:
            qs = qs.filter(seq__lt=before_seq)
        rows = list(qs.order_by("-seq")[: limit + 1])
        has_more = len(rows) > limit
        rows = list(reversed(rows[:limit]))
    return {"messages": [message_serialize(m) for m in rows], "has_more": has_more}


def messages_after(
    *, conversation_id: int, after_seq: int, upto_seq: int | None, limit: int
) -> list[Message]:
    """Return messages with ``after_seq < seq <= upto_seq`` in order, at most ``limit``."""
    qs = Message.objects.filter(conversation_id=conversation_id, seq__gt=after_seq)
    if upto_seq is not None:
        qs = qs.filter(seq__lte=upto_seq)
    return list(qs.order_by("seq")[:limit])


def messages_after_for_member(
    *, user_id: int, conversation_id: int, after_seq: int, upto_seq: int | None, limit: int
) -> list[dict[str, Any]] | None:
    """Messages with ``after_seq < seq <= upto_seq`` in wire form, if ``user_id`` is a
    member (accepted); None if not. One query when there are rows.

    A connection's gap fill (out-of-order pushes across processes make it frequent under
    load): the membership check rides on the read, and the SQL is written out because the
    ORM's query building showed in profiles. A removed member whose removal push was lost
    reads nothing and stops listening.
    """
    msg = Message._meta.db_table
    member = Membership._meta.db_table
    upto = "" if upto_seq is None else "AND m.seq <= %(upto)s "
    sql = (
        f"SELECT {MESSAGE_COLUMNS.format(m='m')} FROM {msg} m "
        f"WHERE m.conversation_id = %(cid)s AND m.seq > %(after)s "
        f"{upto}AND EXISTS (SELECT 1 FROM {member} mb WHERE mb.conversation_id = %(cid)s "
        f"AND mb.user_id = %(uid)s AND mb.state = 'accepted') ORDER BY m.seq LIMIT %(limit)s"
    )
    params = {"cid": conversation_id, "after": after_seq, "upto": upto_seq, "uid": user_id,
              "limit": limit}  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows and not membership_exists(user_id=user_id, conversation_id=conversation_id):
        return None
    return [message_row_serialize(conversation_id, row) for row in rows]


def changes_after_for_member(
    *, user_id: int, conversation_id: int, after_change_seq: int, limit: int
) -> tuple[list[dict[str, Any]], int] | None:
    """The messages changed after ``after_change_seq``, in change order (at most
    ``limit`` + 1: one more tells "too many"), with the conversation's change head read in
    the same statement, if ``user_id`` is an accepted member; None if not.

    A connection's change gap (a live edit or deletion lost or late); edits are rare, so
    this is off the message path and goes through the ORM.
    """
    head = (
        Conversation.objects.filter(
            pk=conversation_id, memberships__user_id=user_id, memberships__state=ACCEPTED
        )
        .values_list("last_change_seq", flat=True)
        .first()
    )
    if head is None:
        return None
    # Read after the head, up to it: changes commit in order, so every change up to the
    # head is there. A message changed again since has left the range; its newer change
    # is past the head and comes live (or from the next read).
    rows = list(
        Message.objects.filter(
            conversation_id=conversation_id, change_seq__gt=after_change_seq, change_seq__lte=head
        ).order_by("change_seq")[: limit + 1]
    )
    return [message_serialize(m) for m in rows], head


@dataclass(frozen=True)
class Resumed:
    """What ``sync`` replays of one conversation the user is in.

    ``messages``: those after the cursor, in seq order (none when caught up, or when more
    than the bound are missing: ``too_far``); ``head``: its last seq. ``changes``: the
    messages at or below the cursor edited or deleted after the change cursor, in change
    order, each once in its current state (none without a change cursor, or when more than
    the bound changed: ``changes_too_far``); ``change_head``: its last change number.
    """

    conversation_id: int
    messages: list[dict]
    too_far: bool
    head: int
    changes: list[dict]
    changes_too_far: bool
    change_head: int


@dataclass(frozen=True)
class Unnamed:
    """A conversation of the user that the client did not name: accepted ones it does not
    know of (created, joined or accepted while it was away), or a pending one."""

    conversation_id: int
    state: str
    head: int
    change_head: int


@dataclass(frozen=True)
class ResumeBatch:
    conversations: list[Resumed]
    unnamed: list[Unnamed]


def _resumed(
    cid: int, after: int, head: int, change_head: int, limit: int, changes_too_far: bool
) -> Resumed:
    return Resumed(cid, [], head - after > limit, head, [], changes_too_far, change_head)


def resume_batch(
    *,
    user_id: int,
    cursors: dict[int, int],
    change_cursors: dict[int, int],
    limit: int,
    changes_limit: int,
    known: Sequence[int] | None = None,
) -> ResumeBatch:
    """For each conversation of ``cursors`` the user is in, what it missed (``Resumed``);
    with ``known`` (the ids the client named), also the user's conversations not among them.

    Conversations the user does not belong to, or has not accepted, are skipped (they get
    no data). Changes are replayed only for the conversations of ``change_cursors``.
    """
    heads = {  # one query: the user's memberships among these, with each head
        cid: (head, change_head)
        for cid, head, change_head in Membership.objects.filter(
            user_id=user_id, conversation_id__in=list(cursors), state=ACCEPTED
        ).values_list("conversation_id", "conversation__last_seq", "conversation__last_change_seq")
    }
    out: list[Resumed] = []
    for cid in sorted(heads):
        after = cursors[cid]
        head, change_head = heads[cid]
        changes: list[dict] = []
        if cid in change_cursors:
            rows = list(
                Message.objects.filter(
                    conversation_id=cid, change_seq__gt=change_cursors[cid], seq__lte=after
                ).order_by("change_seq")[: changes_limit + 1]
            )
            changes = [message_serialize(m) for m in rows]
        resumed = _resumed(cid, after, head, change_head, limit, len(changes) > changes_limit)
        if not resumed.changes_too_far:
            resumed.changes.extend(changes)
        if head > after and not resumed.too_far:
            rows = messages_after(conversation_id=cid, after_seq=after, upto_seq=None, limit=limit)
            resumed.messages.extend(message_serialize(m) for m in rows)
        out.append(resumed)
    unnamed: list[Unnamed] = []
    if known is not None:
        others = (
            Membership.objects.filter(user_id=user_id)
            .exclude(state=ACCEPTED, conversation_id__in=list(known))
            .order_by("conversation_id")
            .values_list(
                "conversation_id",
                "state",
                "conversation__last_seq",
                "conversation__last_change_seq",
            )
        )
        unnamed = [Unnamed(*row) for row in others]
    return ResumeBatch(out, unnamed)


def _resume_sql() -> str:
    conv = Conversation._meta.db_table
    member = Membership._meta.db_table
    msg = Message._meta.db_table
    # c: the cursors; h: those of conversations the user accepted, with each head; then
    # (m) each with its missed messages (none when caught up or too far behind), in seq
    # order; (u) each with the messages at or below its cursor changed after its change
    # cursor (none without one), in change order, one more than the bound to tell "too
    # many" (``change_seq > 0`` lets the partial index ``msg_changes`` serve); (o) with
    # ``others``, the user's memberships the client did not name: accepted ones not among
    # ``known``, and pending ones.
    cols = MESSAGE_COLUMNS.format(m="m")
    nulls = ", ".join(["NULL"] * len(MESSAGE_COLUMNS.split(",")))  # an 'o' row has no message
    return f"""
        WITH c AS (
            SELECT * FROM unnest(%(cids)s::bigint[], %(afters)s::bigint[],
                                 %(change_afters)s::bigint[]) AS c(cid, after, change_after)
        ), h AS (
            SELECT c.cid, c.after, c.change_after, cv.last_seq AS head,
                   cv.last_change_seq AS change_head
            FROM c JOIN {member} mb ON mb.conversation_id = c.cid AND mb.user_id = %(uid)s
                AND mb.state = 'accepted'
            JOIN {conv} cv ON cv.id = c.cid
        )
        SELECT 'm' AS part, h.cid, h.head, h.change_head, m.seq AS ord, NULL AS state, {cols}
        FROM h LEFT JOIN LATERAL (
            SELECT * FROM {msg} m
            WHERE m.conversation_id = h.cid AND m.seq > h.after
              AND h.head - h.after <= %(limit)s
            ORDER BY m.seq LIMIT %(limit)s
        ) m ON TRUE
        UNION ALL
        SELECT 'u', h.cid, h.head, h.change_head, m.change_seq, NULL, {cols}
        FROM h JOIN LATERAL (
            SELECT * FROM {msg} m
            WHERE m.conversation_id = h.cid AND m.change_seq > 0
              AND m.change_seq > h.change_after AND m.seq <= h.after
            ORDER BY m.change_seq LIMIT %(changes_limit)s + 1
        ) m ON TRUE
        UNION ALL
        SELECT 'o', mb.conversation_id, cv.last_seq, cv.last_change_seq, 0, mb.state, {nulls}
        FROM {member} mb JOIN {conv} cv ON cv.id = mb.conversation_id
        WHERE %(others)s AND mb.user_id = %(uid)s
          AND NOT (mb.state = 'accepted' AND mb.conversation_id = ANY(%(known)s::bigint[]))
        ORDER BY 1, 2, 5
    """


async def aresume_batch(
    *,
    user_id: int,
    cursors: dict[int, int],
    change_cursors: dict[int, int],
    limit: int,
    changes_limit: int,
    known: Sequence[int] | None = None,
) -> ResumeBatch:
    """``resume_batch`` from the event loop in one statement, whatever the number of
    conversations (PostgreSQL; elsewhere ``resume_batch`` in a thread)."""
    if not LoopConnection.available():
        return await db(resume_batch)(
            user_id=user_id,
            cursors=cursors,
            change_cursors=change_cursors,
            limit=limit,
            changes_limit=changes_limit,
            known=known,
        )
    if not cursors and known is None:
        return ResumeBatch([], [])
    cids = list(cursors)
    rows = await loop_fetch(
        _resume_sql(),
        {
            "cids": cids,
            "afters": [cursors[c] for c in cids],
            "change_afters": [change_cursors.get(c) for c in cids],
            "uid": user_id,
            "limit": limit,
            "changes_limit": changes_limit,
            "others": known is not None,
            "known": list(known or ()),
        },
    )
    out: dict[int, Resumed] = {}
    changes: dict[int, list[dict]] = {}
    unnamed: list[Unnamed] = []
    for part, cid, head, change_head, _, state, *message in rows:
        if part == "o":
            unnamed.append(Unnamed(cid, state, head, change_head))
            continue
        if cid not in out:
            out[cid] = _resumed(cid, cursors[cid], head, change_head, limit, False)
        if part == "u":
            changes.setdefault(cid, []).append(message_row_serialize(cid, message))
        elif message[0] is not None:
            out[cid].messages.append(message_row_serialize(cid, message))
    for cid, rows_changed in changes.items():
        if len(rows_changed) > changes_limit:
            out[cid] = replace(out[cid], changes_too_far=True)
        else:
            out[cid].changes.extend(rows_changed)
    return ResumeBatch([out[cid] for cid in sorted(out)], unnamed)


def membership_exists(*, user_id: int, conversation_id: int) -> bool:
    """Return whether the user is an accepted member (pending ones hear nothing)."""
    return Membership.objects.filter(
        user_id=user_id, conversation_id=conversation_id, state=ACCEPTED
    ).exists()


async def amembership_exists(*, user_id: int, conversation_id: int) -> bool:
    """``membership_exists`` from the event loop: one read, no thread hop."""
    if not LoopConnection.available():
        return await db(membership_exists)(user_id=user_id, conversation_id=conversation_id)
    sql = (
        f"SELECT 1 FROM {Membership._meta.db_table} "
        f"WHERE user_id = %(uid)s AND conversation_id = %(cid)s AND state = 'accepted'"
    )
    return bool(await loop_fetch(sql, {"uid": user_id, "cid": conversation_id}))
