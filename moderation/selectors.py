"""Reads for moderation: the sanction in force on a user, the warnings to show."""

from django.db.models import Q
from django.utils import timezone

from accounts.restrictions import Restriction as InForce
from core.db import LoopConnection, db, loop_fetch

from .models import Notice, Restriction

# The socket's opening reads on the event loop's own connection (core.db): one indexed
# read of an (almost always) empty table, no thread hop.
_IN_FORCE_SQL = (
    f'SELECT "category", "until" FROM "{Restriction._meta.db_table}" '
    'WHERE "user_id" = %(id)s AND ("until" IS NULL OR "until" > now())'
)


def restriction_get(user_id: int) -> InForce | None:
    """Return the suspension or ban in force on ``user_id`` (one past its end is none)."""
    row = (
        Restriction.objects.filter(user_id=user_id)
        .filter(Q(until__isnull=True) | Q(until__gt=timezone.now()))
        .values_list("category", "until")
        .first()
    )
    return None if row is None else InForce(category=row[0], until=row[1])


async def arestriction_get(user_id: int) -> InForce | None:
    """``restriction_get`` from the event loop."""
    if not LoopConnection.available():
        return await db(restriction_get)(user_id)
    rows = await loop_fetch(_IN_FORCE_SQL, {"id": user_id})
    return InForce(category=rows[0][0], until=rows[0][1]) if rows else None


def notices_unshown(*, user_id: int) -> list[Notice]:
    """The user's warnings not yet shown on a page, oldest first."""
    return list(Notice.objects.filter(user_id=user_id, shown_at__isnull=True).order_by("pk"))
