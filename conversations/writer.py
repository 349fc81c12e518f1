"""Storing messages: the one owner of the send SQL, and the group commit of WebSocket sends.

Why a module of its own: the message path is the hot path (docs/subsystems/messaging.md,
"The message path"). Every ``message.send`` queued on a process' event loop while the
previous batch was being stored goes to PostgreSQL together: one hop to the database thread
and one transaction per batch, not per message. Under load a batch grows by itself; an idle
server stores a lone message at once (nothing waits for company). After the commit the
batch's publish starts from the loop that owns the sockets, each sender gets its reply,
and the next batch is stored while that publish is on its way.

``messages_store`` is the SQL, for a batch of any size (the REST send uses it for one):

- on PostgreSQL, one statement (three round trips with BEGIN and COMMIT, whatever the
  batch's size): a retried ``(sender, client_id)`` is answered with the stored message
  (``created`` false); the conversations of the other requests are locked in id order (so
  two processes never deadlock); each request is checked (the sender is an accepted
  member; in a direct conversation, the other side is still there, neither side blocked the
  other, and a request not accepted yet holds at most ``REQUEST_MESSAGES_MAX`` messages);
  every conversation's ``last_seq``
  moves up by its count of accepted messages, each message gets its seq, gap-free, and one
  multi-row ``INSERT ... ON CONFLICT DO NOTHING`` stores them. If a concurrent retry of one of
  these sends was stored meanwhile (by another process), the whole transaction rolls back and
  the batch is tried again, so no seq is ever skipped;
- the same pair twice in one batch is stored once.

Other databases (SQLite under ``make run``) store the batch one message at a time in the same
transaction, with the same results.
"""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from core.db import LoopConnection, db
from core.errors import (
    OUTAGE_RETRY_AFTER_SECONDS,
    Blocked,
    Conflict,
    Declined,
    Invalid,
    NotAccepted,
    NotFound,
    RequestLimit,
    ServiceError,
    Unavailable,
)
from core.events import asend_events, conversation_group
from core.loop import per_loop
from core.metrics import MESSAGE_SEND_SECONDS
from core.text import text_storable
from profiles.models import Profile
from relations.models import Block
from relations.selectors import block_exists_between

from .models import Conversation, Membership, Message
from .selectors import membership_get, message_serialize

logger = logging.getLogger(__name__)
# Rate-limited in settings.LOGGING: while PostgreSQL is away every batch fails alike.
outage_logger = logging.getLogger("conversations.writer.outage")

CLIENT_ID_REUSED = "This client_id was already used for another conversation."
# A batch whose INSERT met a concurrent retry of one of its sends is tried this many times.
STORE_ATTEMPTS = 3


@dataclass(frozen=True)
class SendRequest:
    sender_id: int
    conversation_id: int
    body: str
    client_id: str


@dataclass
class Stored:
    """The outcome of one request: the message and whether it is new, or the error."""

    message: Message | None = None
    created: bool = False
    error: ServiceError | None = None
    # The conversation's members version the message was stored under (its push carries it).
    members_version: int = 0


def body_validate(body: object) -> str:
    """Return a message body, or raise ``invalid`` (sends and edits)."""
    limit = settings.LIMITS["MESSAGE_MAX_CHARS"]
    if not isinstance(body, str):
        raise Invalid("body must be a string.")
    if not text_storable(body):
        raise Invalid("body contains characters that cannot be stored (NUL, lone surrogates).")
    if not body.strip():
        raise Invalid("body cannot be empty.")
    if len(body) > limit:
        raise Invalid(f"body has at most {limit} characters.", limit=limit)
    return body


def send_request_parse(
    *, sender_id: int, conversation_id: object, body: object, client_id: object
) -> SendRequest:
    """Return a valid request, or raise ``invalid`` (before anything is queued or stored)."""
    if not isinstance(conversation_id, int) or isinstance(conversation_id, bool):
        raise Invalid("conversation_id must be an integer.")
    body = body_validate(body)
    id_limit = settings.LIMITS["CLIENT_ID_MAX_CHARS"]
    if (
        not isinstance(client_id, str)
        or not client_id
        or len(client_id) > id_limit
        or not text_storable(client_id)
    ):
        raise Invalid(f"client_id must be a string of 1 to {id_limit} characters.")
    return SendRequest(sender_id, conversation_id, body, client_id)


# -- the SQL ------------------------------------------------------------------------------


class _Retry(Exception):
    """A concurrent retry of a send in the batch was stored meanwhile: roll back, try again."""


def messages_store(requests: Sequence[SendRequest]) -> list[Stored]:
    """Store ``requests`` in one transaction; return one outcome per request, in order."""
    for _attempt in range(STORE_ATTEMPTS - 1):
        try:
            return _store_once(requests)
        except (_Retry, IntegrityError):
            continue
        except OperationalError as exc:
            if not isinstance(exc.__cause__, psycopg.errors.SerializationFailure):
                raise
    return _store_once(requests)


def _dedupe(requests: Sequence[SendRequest]) -> tuple[dict[tuple[int, str], int], list[int]]:
    """Each (sender, client_id)'s first index, and the indexes that are firsts."""
    first: dict[tuple[int, str], int] = {}
    fresh: list[int] = []
    for i, r in enumerate(requests):
        if first.setdefault((r.sender_id, r.client_id), i) == i:
            fresh.append(i)
    return first, fresh


def _copies_answer(
    requests: Sequence[SendRequest], first: dict[tuple[int, str], int], out: list[Stored]
) -> None:
    """Copies of a (sender, client_id) seen earlier in the batch get the first's outcome."""
    for i, r in enumerate(requests):
        j = first[(r.sender_id, r.client_id)]
        if j == i:
            continue
        if r.conversation_id != requests[j].conversation_id:
            out[i] = Stored(error=Conflict(CLIENT_ID_REUSED))
        else:
            out[i] = Stored(message=out[j].message, created=False, error=out[j].error)


def _store_once(requests: Sequence[SendRequest]) -> list[Stored]:
    with transaction.atomic():
        out = [Stored() for _ in requests]
        first, fresh = _dedupe(requests)
        now = timezone.now()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(_batch_sql(), _batch_params(requests, fresh, now))
                rows = cursor.fetchall()
            for i in _batch_apply(requests, fresh, rows, out, now):
                out[i].error = _refusal(requests[i])
        else:
            _store_portable(requests, fresh, out, now)
        _copies_answer(requests, first, out)
        return out


async def amessages_store(requests: Sequence[SendRequest], conn: LoopConnection) -> list[Stored]:
    """``messages_store`` from the event loop, on the loop's own connection (PostgreSQL).

    One round trip a batch and no thread: the batch is one statement on an autocommit
    connection (``LoopConnection(autocommit=True)``), so it is its own transaction, stored
    whole or not at all, with no ``BEGIN`` / ``COMMIT`` around it (they were pipelined
    with it: psycopg's pipeline mode per batch was 16 % of a server's time under the
    typical load). When a concurrent retry got in first the statement fails
    (``switchboard_batch_retry()``, migration 0002), nothing is stored, and the batch is
    tried again. A batch that
    fails because the connection broke (PostgreSQL restarted while it was idle) is tried
    once more on a new connection: a retried send is answered with its stored message, so
    trying again never stores anything twice.
    """
    first, fresh = _dedupe(requests)
    for attempt in range(STORE_ATTEMPTS):
        out = [Stored() for _ in requests]
        now = timezone.now()
        pg = await conn.get()
        if not pg.autocommit:
            raise RuntimeError("amessages_store() takes an autocommit LoopConnection")
        try:
            cursor = await pg.execute(_batch_sql(), _batch_params(requests, fresh, now))
            rows = await cursor.fetchall()
        except (psycopg.errors.SerializationFailure, psycopg.IntegrityError):
            continue  # a concurrent send took the seq or the client_id first: nothing stored
        except psycopg.OperationalError:
            broken = pg.closed or pg.broken
            conn.discard()
            if broken and attempt == 0:
                continue
            raise
        except BaseException:  # cancelled mid-statement: the connection's state is unknown
            conn.discard()
            raise
        refused = _batch_apply(requests, fresh, rows, out, now)
        if refused:
            errors = await db(_refusals)([requests[i] for i in refused])
            for i, error in zip(refused, errors, strict=True):
                out[i].error = error
        _copies_answer(requests, first, out)
        return out
    raise Unavailable("These sends met concurrent retries of themselves; try again.")


def _store_portable(
    requests: Sequence[SendRequest], fresh: list[int], out: list[Stored], now: datetime
) -> None:
    existing = _existing(requests, fresh)
    for i in fresh:
        r = requests[i]
        found = existing.get((r.sender_id, r.client_id))
        if found is None:
            _insert_one(r, out[i], now)
        elif found.conversation_id != r.conversation_id:
            out[i].error = Conflict(CLIENT_ID_REUSED)
        else:
            out[i].message = found


def _existing(
    requests: Sequence[SendRequest], indexes: list[int]
) -> dict[tuple[int, str], Message]:
    if not indexes:
        return {}
    senders = {requests[i].sender_id for i in indexes}
    client_ids = {requests[i].client_id for i in indexes}
    wanted = {(requests[i].sender_id, requests[i].client_id) for i in indexes}
    rows = Message.objects.filter(sender_id__in=senders, client_id__in=client_ids)
    return {(m.sender_id, m.client_id): m for m in rows if (m.sender_id, m.client_id) in wanted}  # type: ignore[misc]


def _batch_sql() -> str:
    conv = Conversation._meta.db_table
    member = Membership._meta.db_table
    msg = Message._meta.db_table
    block = Block._meta.db_table
    profile = Profile._meta.db_table
    # req: the batch; dup: requests already stored (retries); fresh: the others, each with
    # its rank among the batch's sends of that sender there (rn); locked: the batch's
    # conversations, locked in id order (read by the array itself: the generic plan the
    # writer's connection keeps uses the primary key, where ``IN (SELECT cid FROM fresh)``
    # scanned every conversation); ok: the fresh requests whose sender is an accepted
    # member and, in a direct conversation, whose other side is still a member, not blocked
    # either way, and has accepted, or the request (whose only sender is the requester: a
    # pending member cannot send) stays within REQUEST_MESSAGES_MAX (the same probe of the
    # other membership as the block check: no extra round trip); upd: each
    # conversation's last_seq moved up by its accepted count; seqs: each accepted request's
    # seq; ins: the insert, with the author's profile language (one probe of its unique
    # index per message), from which PostgreSQL computes the message's search column
    # (migration 0006, docs/subsystems/search.md). Then one row per stored request: new
    # ones (id NULL if a concurrent retry got in first) and retries.
    return f"""
        WITH req AS (
            SELECT * FROM unnest(
                %(idx)s::int[], %(cid)s::bigint[], %(uid)s::bigint[], %(body)s::text[],
                %(client_id)s::text[]
            ) AS r(idx, cid, uid, body, client_id)
        ), dup AS (
            SELECT r.idx, m.id, m.conversation_id, m.seq, m.body, m.created_at, m.edited_at,
                   m.deleted_at, m.change_seq
            FROM req r JOIN {msg} m ON m.sender_id = r.uid AND m.client_id = r.client_id
        ), fresh AS (
            SELECT req.*, row_number() OVER (PARTITION BY cid, uid ORDER BY idx) AS rn
            FROM req WHERE idx NOT IN (SELECT idx FROM dup)
        ), locked AS (
            SELECT c.id, c.kind, c.last_seq, c.members_version FROM {conv} c
            WHERE c.id = ANY(%(cid)s::bigint[])
            ORDER BY c.id FOR UPDATE
        ), ok AS (
            SELECT f.idx, f.cid, f.uid, f.body, f.client_id, c.members_version
            FROM fresh f JOIN locked c ON c.id = f.cid
            WHERE EXISTS (
                SELECT 1 FROM {member} m WHERE m.conversation_id = f.cid AND m.user_id = f.uid
                AND m.state = 'accepted'
            ) AND (c.kind <> 'direct' OR EXISTS (
                SELECT 1 FROM {member} o
                WHERE o.conversation_id = f.cid AND o.user_id <> f.uid
                AND (o.state = 'accepted' OR c.last_seq + f.rn <= %(request_max)s)
                AND NOT EXISTS (
                    SELECT 1 FROM {block} b
                    WHERE (b.blocker_id = f.uid AND b.blocked_id = o.user_id)
                       OR (b.blocked_id = f.uid AND b.blocker_id = o.user_id)
                )
            ))
        ), n AS (
            SELECT cid, count(*) AS n FROM ok GROUP BY cid
        ), upd AS (
            UPDATE {conv} c SET last_seq = c.last_seq + n.n, last_message_at = %(now)s
            FROM n WHERE c.id = n.cid RETURNING c.id, c.last_seq
        ), seqs AS (
            SELECT ok.*,
                   upd.last_seq - n.n + row_number() OVER (PARTITION BY ok.cid ORDER BY ok.idx)
                   AS seq
            FROM ok JOIN n ON n.cid = ok.cid JOIN upd ON upd.id = ok.cid
        ), ins AS (
            INSERT INTO {msg} (conversation_id, seq, sender_id, body, client_id, created_at,
                               language)
            SELECT cid, seq, uid, body, client_id, %(now)s,
                   COALESCE((SELECT p.language FROM {profile} p WHERE p.user_id = uid), '')
            FROM seqs
            ON CONFLICT (sender_id, client_id) DO NOTHING
            RETURNING id, sender_id, client_id
        )
        SELECT s.idx, TRUE, COALESCE(i.id, switchboard_batch_retry()), s.cid, s.seq, NULL,
               NULL, NULL, NULL, s.members_version, 0
        FROM seqs s LEFT JOIN ins i ON i.sender_id = s.uid AND i.client_id = s.client_id
        UNION ALL
        SELECT d.idx, FALSE, d.id, d.conversation_id, d.seq, d.body, d.created_at,
               d.edited_at, d.deleted_at, 0, d.change_seq
        FROM dup d
    """


def _batch_params(
    requests: Sequence[SendRequest], fresh: list[int], now: datetime
) -> dict[str, Any]:
    return {
        "idx": fresh,
        "cid": [requests[i].conversation_id for i in fresh],
        "uid": [requests[i].sender_id for i in fresh],
        "body": [requests[i].body for i in fresh],
        "client_id": [requests[i].client_id for i in fresh],
        "now": now,
        "request_max": settings.LIMITS["REQUEST_MESSAGES_MAX"],
    }


def _batch_apply(
    requests: Sequence[SendRequest],
    fresh: list[int],
    rows: Sequence[tuple[Any, ...]],
    out: list[Stored],
    now: datetime,
) -> list[int]:
    """Fill ``out`` from the batch statement's rows; return the indexes it refused.

    (A concurrent retry that got in first made the statement fail: every new row has an id.)
    """
    answered = set()
    for idx, new, pk, cid, seq, body, created_at, edited_at, deleted_at, version, change in rows:
        r = requests[idx]
        answered.add(idx)
        if not new and cid != r.conversation_id:
            out[idx].error = Conflict(CLIENT_ID_REUSED)
            continue
        out[idx].message = Message(
            pk=pk,
            conversation_id=cid,
            seq=seq,
            sender_id=r.sender_id,
            body=r.body if new else body,
            client_id=r.client_id,
            created_at=now if new else created_at,
            edited_at=None if new else edited_at,
            deleted_at=None if new else deleted_at,
            change_seq=change,
        )
        out[idx].created = bool(new)
        out[idx].members_version = version
    return [i for i in fresh if i not in answered]


def _next_seq_one_sql() -> str:
    conv = Conversation._meta.db_table
    member = Membership._meta.db_table
    block = Block._meta.db_table
    return (
        f"UPDATE {conv} SET last_seq = last_seq + 1, last_message_at = %(now)s "
        f"WHERE {conv}.id = %(cid)s "
        f"AND EXISTS (SELECT 1 FROM {member} m WHERE m.conversation_id = %(cid)s "
        f"AND m.user_id = %(uid)s AND m.state = 'accepted') "
        f"AND ({conv}.kind <> 'direct' OR EXISTS ("
        f"SELECT 1 FROM {member} o WHERE o.conversation_id = %(cid)s AND o.user_id <> %(uid)s "
        f"AND (o.state = 'accepted' OR {conv}.last_seq + 1 <= %(request_max)s) "
        f"AND NOT EXISTS (SELECT 1 FROM {block} b WHERE (b.blocker_id = %(uid)s "
        f"AND b.blocked_id = o.user_id) OR (b.blocked_id = %(uid)s "
        f"AND b.blocker_id = o.user_id)))) RETURNING last_seq, members_version"
    )


def _insert_one(r: SendRequest, out: Stored, now: datetime) -> None:
    """Portable path, one message: the same checks in portable SQL (SQLite under make run)."""
    table = Message._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            _next_seq_one_sql(),
            {
                "now": now,
                "cid": r.conversation_id,
                "uid": r.sender_id,
                "request_max": settings.LIMITS["REQUEST_MESSAGES_MAX"],
            },
        )
        row = cursor.fetchone()
        if row is None:
            out.error = _refusal(r)
            return
        cursor.execute(
            f"INSERT INTO {table} (conversation_id, seq, sender_id, body, client_id, created_at) "
            f"VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (sender_id, client_id) DO NOTHING "
            f"RETURNING id",
            [r.conversation_id, row[0], r.sender_id, r.body, r.client_id, now],
        )
        inserted = cursor.fetchone()
    if inserted is None:
        raise _Retry  # a concurrent retry got in first: its seq would be a gap
    out.message = Message(
        pk=inserted[0],
        conversation_id=r.conversation_id,
        seq=row[0],
        sender_id=r.sender_id,
        body=r.body,
        client_id=r.client_id,
        created_at=now,
    )
    out.created = True
    out.members_version = row[1]


def _refusals(requests: Sequence[SendRequest]) -> list[ServiceError]:
    return [_refusal(r) for r in requests]


def _refusal(r: SendRequest) -> ServiceError:
    """Why a request was not accepted (the slow path: only refused sends come here)."""
    try:
        membership = membership_get(user_id=r.sender_id, conversation_id=r.conversation_id)
    except ServiceError as exc:
        return exc
    if membership.state != Membership.State.ACCEPTED:
        return NotAccepted("Accept this conversation before you send.")
    conversation = membership.conversation
    if conversation.direct_key:
        low, high = (int(u) for u in conversation.direct_key.split(":"))
        other = high if r.sender_id == low else low
        if block_exists_between(user_id=r.sender_id, other_user_id=other):
            return Blocked("You cannot message this user.")
        theirs = Membership.objects.filter(conversation=conversation, user_id=other).first()
        if theirs is None:
            return Declined("They declined this conversation.")
        if theirs.state != Membership.State.ACCEPTED:
            limit = settings.LIMITS["REQUEST_MESSAGES_MAX"]
            return RequestLimit(
                f"At most {limit} messages until they accept your request.", limit=limit
            )
    return NotFound("No such conversation.")  # deleted between the two statements


def message_event(stored: Stored) -> dict[str, Any]:
    """The ``message.new`` push of a stored message (``core.events`` item)."""
    message = stored.message
    assert message is not None
    return {
        "event": "message.new",
        "data": message_serialize(message),
        "groups": [conversation_group(message.conversation_id)],
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "members_version": stored.members_version,
    }


# -- the group commit ---------------------------------------------------------------------


@dataclass
class _Writer:
    """The sends queued on one event loop, stored a batch at a time."""

    pending: list[tuple[SendRequest, "asyncio.Future[Stored]"]] = field(default_factory=list)
    task: "asyncio.Future[None] | None" = None
    # The publishes of stored batches still on their way (held here: a task nothing refers
    # to may be collected mid-way).
    publishing: "set[asyncio.Future[None]]" = field(default_factory=set)
    # PostgreSQL: the loop's own connection (no thread hop per batch); else the ORM thread.
    conn: LoopConnection | None = field(
        default_factory=lambda: (
            LoopConnection(autocommit=True, generic_plans=True)
            if LoopConnection.available()
            else None
        )
    )

    async def _store(self, requests: list[SendRequest]) -> list[Stored]:
        if self.conn is not None:
            return await amessages_store(requests, self.conn)
        return await db(messages_store)(requests)

    async def asend(self, request: SendRequest) -> Stored:
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self.pending.append((request, future))
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())
        return await future

    async def _run(self) -> None:
        try:
            await self._batches()
        except BaseException as exc:  # never leave a sender waiting for ever
            for _, future in self.pending:
                if not future.done():
                    future.set_exception(exc)
            self.pending = []
            raise

    async def _batches(self) -> None:
        limit = settings.LIMITS["MESSAGE_BATCH_MAX"]
        while self.pending:
            batch, self.pending = self.pending[:limit], self.pending[limit:]
            requests = [r for r, _ in batch]
            try:
                with MESSAGE_SEND_SECONDS.time():
                    results = await self._store(requests)
            except Exception as exc:  # the database failed: every send of the batch did
                if isinstance(exc, psycopg.Error | DatabaseError):  # sent again, it may work
                    outage_logger.warning("message batch of %s failed: %r", len(batch), exc)
                    exc = Unavailable(
                        "The database is unavailable; send again.",
                        retry_after=OUTAGE_RETRY_AFTER_SECONDS,
                    )
                else:
                    logger.warning("message batch of %s failed", len(batch), exc_info=True)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            new = [message_event(s) for s in results if s.created and s.message]
            if new:
                self._publish(new)
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # its socket may have gone meanwhile
                    future.set_result(result)

    def _publish(self, events: list[dict[str, Any]]) -> None:
        """Publish a stored batch while the next one is stored.

        The publish starts before the senders hear their replies (the recipients' frames
        leave first) and the writer does not wait for it: it stores the next batch while
        this one is on its way to Redis. Publishes keep the order of their batches: each
        task queues its events with the layer's publisher (``core.layer``) in its first
        step, without waiting, and tasks take their first step in the order they were made.
        (A sender's own socket still hears its reply first: the event comes back over the
        subscription, a round trip after the publish, and the reply is written in the
        loop's next pass.) ``asend_events`` logs its failures.
        """
        task = asyncio.ensure_future(asend_events(items=events))
        self.publishing.add(task)
        task.add_done_callback(self.publishing.discard)


_writer = per_loop(_Writer)


async def amessage_send(request: SendRequest) -> tuple[Message, bool]:
    """Store a message with the sends queued alongside it; return it and whether it is new.

    Raises the request's ``ServiceError`` (not a member, blocked, client_id conflict).
    """
    result = await _writer().asend(request)
    if result.error is not None:
        raise result.error
    assert result.message is not None
    return result.message, result.created
