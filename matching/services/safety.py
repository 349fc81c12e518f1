"""Safety in Meet: blocking a partner (a relation between people) and reporting one."""

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from core.errors import Conflict, Invalid
from core.redis import bus
from core.text import text_storable
from relations import services as relations_services
from relations.models import Block

from .. import pool, roomlog, selectors
from ..models import Match, Report
from .rooms import match_end


def _avoid_forever(a: int, b: int) -> None:
    for me, other in ((a, b), (b, a)):
        pool.avoid_write(user_id=me, until_by_user={other: pool.AVOID_FOREVER_MS}, complete=False)


def block_create(*, user_id: int, match_id: object = None, blocked_id: object = None) -> Block:
    """Block my partner in ``match_id`` (or ``blocked_id``): never matched again, no messages."""
    match = None
    if match_id is not None:
        match = selectors.match_for_member(match_id=match_id, user_id=user_id)
        blocked_id = match.partner_of(user_id)
    with transaction.atomic():
        block, _ = relations_services.block_create(
            user_id=user_id, blocked_id=blocked_id, match_id=match.pk if match else None
        )
        other = block.blocked_id
        transaction.on_commit(lambda: _avoid_forever(user_id, other))
    for open_match in Match.objects.filter(
        Q(user_a_id=user_id, user_b_id=block.blocked_id)
        | Q(user_a_id=block.blocked_id, user_b_id=user_id),
        ended_at__isnull=True,
    ):
        match_end(match_id=open_match.pk, reason=Match.EndReason.BLOCK, by_user_id=user_id)
    return block


def block_remove(*, user_id: int, blocked_id: object) -> None:
    """Unblock: take back my block; the two may be matched and message each other again.

    The avoid sets of both are dropped after the commit and rebuilt from PostgreSQL by the
    next decision (they are a cache; a block is the only entry that never expires, and a
    set never shortens an entry in place). A block the other side made stays.
    """
    with transaction.atomic():
        relations_services.block_delete(user_id=user_id, blocked_id=blocked_id)
        assert isinstance(blocked_id, int)  # block_delete refused anything else
        other = blocked_id
        transaction.on_commit(
            lambda: bus(pool.avoid_key(user_id)).delete(
                pool.avoid_key(user_id), pool.avoid_key(other)
            ),
            robust=True,  # a lost avoid set is rebuilt anyway; the unblock is stored
        )


def report_create(
    *,
    user_id: int,
    match_id: object,
    reason: object,
    text: object = "",
    attach_lines: object = False,
) -> Report:
    """Report my partner in a match (open or ended) for moderators to review.

    The room's recent signalling metadata is copied into the report; its last text lines
    only with ``attach_lines`` (while the room's record lives: ``roomlog``).
    """
    match = selectors.match_for_member(match_id=match_id, user_id=user_id)
    if not isinstance(attach_lines, bool):
        raise Invalid("attach_lines must be true or false.")
    if reason not in Report.Reason.values:
        raise Invalid("reason must be one of: " + ", ".join(Report.Reason.values) + ".")
    limit = settings.LIMITS["MATCH_REPORT_TEXT_MAX_CHARS"]
    if text is None:
        text = ""
    if not isinstance(text, str) or len(text) > limit or not text_storable(text):
        raise Invalid(f"text must be plain text of at most {limit} characters.", limit=limit)
    if Report.objects.filter(match=match, reporter_id=user_id).exists():
        raise Conflict("You already reported this match.")
    return Report.objects.create(
        match=match,
        reporter_id=user_id,
        reported_id=match.partner_of(user_id),
        reason=reason,
        text=text.strip(),
        signals=roomlog.signals_read(match_id=match.pk),
        room_lines=roomlog.lines_read(match_id=match.pk) if attach_lines else None,
    )


def meet_exclude(*, user_id: int) -> int | None:
    """Take a user out of Meet now: their pool ticket, and their open match (ended,
    reason ``moderation``, by nobody). Return the match ended, if any.

    For a moderator's suspension or ban; the user's sockets are closed by accounts.
    """
    pool.pool_leave(user_id=user_id)
    active = selectors.match_active_for_user(user_id=user_id)
    if active is not None and match_end(match_id=active.pk, reason=Match.EndReason.MODERATION):
        return active.pk
    return None
