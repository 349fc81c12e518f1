"""Reads for authentication at WebSocket connect."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from rest_framework.authtoken.models import Token

from core.batches import Reads
from core.db import LoopConnection, db, loop_fetch
from core.loop import per_loop
from core.redis import abus, key

User = get_user_model()


def _user_sql(where: str, first: str = "") -> tuple[str, list[str]]:
    """SELECT of an active user's every column (``u``) joined as ``where`` says, after the
    columns ``first`` (if any)."""
    fields = [f for f in User._meta.concrete_fields]
    columns = ", ".join([first] * bool(first) + [f'u."{f.column}"' for f in fields])
    return (
        f'SELECT {columns} FROM "{User._meta.db_table}" u {where} AND u."is_active"',
        [f.attname for f in fields],
    )


TOKEN_MAX_CHARS = Token._meta.get_field("key").max_length or 40
_ACTIVE_SQL, _USER_FIELDS = _user_sql('WHERE u."id" = %(id)s')
# The tokens of many sockets opening together (``core.batches.Reads``): key, then the user.
_TOKENS_SQL, _ = _user_sql(
    f'JOIN "{Token._meta.db_table}" t ON t."user_id" = u."id" WHERE t."key" = ANY(%(keys)s)',
    first='t."key"',
)


async def _auser(sql: str, params: dict[str, object]) -> AbstractBaseUser | None:
    rows = await loop_fetch(sql, params)
    return User.from_db("default", _USER_FIELDS, rows[0]) if rows else None


def user_by_token(*, token: str) -> AbstractBaseUser | None:
    """Return the active user owning an API token, or None."""
    row = Token.objects.select_related("user").filter(key=token).first()
    return row.user if row and row.user.is_active else None


async def auser_by_token(*, token: str) -> AbstractBaseUser | None:
    """``user_by_token`` from the event loop: no thread hop, and one statement for the
    sockets opening together (PostgreSQL)."""
    if not LoopConnection.available():
        return await db(user_by_token)(token=token)
    if not (0 < len(token) <= TOKEN_MAX_CHARS and token.isascii() and token.isprintable()):
        return None  # no such key; and never a value that could fail the others' statement
    row = await _token_reads().get(token)
    return None if row is None else User.from_db("default", _USER_FIELDS, row)


async def _tokens_read(keys: list[str]) -> dict[str, tuple]:
    """The active users' rows of many tokens in one statement (``core.batches.Reads``)."""
    return {row[0]: row[1:] for row in await loop_fetch(_TOKENS_SQL, {"keys": keys})}


def _token_reads_new() -> "Reads[str, tuple | None]":
    return Reads(_tokens_read, None)


_token_reads = per_loop(_token_reads_new)


@dataclass(frozen=True)
class RedeemedTicket:
    user_id: int
    credential: str | None  # the ``core.router.credential_id`` it was issued to, if any
    value: str  # as stored, for ``aws_ticket_give_back``
    ttl_ms: int  # what was left of its life: a ticket given back keeps only that


async def aws_ticket_redeem(*, ticket: str) -> RedeemedTicket | None:
    """Consume a one-time ticket; return its user id and the credential it was issued to.

    None if unknown or used.
    """
    if not ticket or len(ticket) > 100:
        return None
    # GETDEL (Redis >= 6.2) makes the ticket single-use even when two sockets race; PTTL in
    # the same MULTI reads the life it had left, for ``aws_ticket_give_back``.
    name = key("wsticket", ticket)
    pipe = abus(name).pipeline(transaction=True)
    pipe.pttl(name)
    pipe.execute_command("GETDEL", name)
    ttl_ms, value = await pipe.execute()
    if not value or ttl_ms <= 0:
        return None
    user_id, _, credential = str(value).partition(" ")
    return RedeemedTicket(int(user_id), credential or None, str(value), int(ttl_ms))


def user_active(*, user_id: int) -> AbstractBaseUser | None:
    """Return the active user with this id, or None."""
    return User.objects.filter(pk=user_id, is_active=True).first()


async def auser_active(*, user_id: int) -> AbstractBaseUser | None:
    """``user_active`` from the event loop: one read, no thread hop (PostgreSQL)."""
    if not LoopConnection.available():
        return await db(user_active)(user_id=user_id)
    return await _auser(_ACTIVE_SQL, {"id": user_id})
