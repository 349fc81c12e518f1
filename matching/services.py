"""Writes for Meet: entering the pool, recording and ending matches, the room, safety, sweep.

The decision itself is atomic in Redis (``match.lua``); these functions prepare its inputs
(profile, avoid set rebuilt from PostgreSQL), record what it decided in PostgreSQL and push
events. docs/subsystems/matching.md describes the whole flow.
"""

import logging
import math
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ops.metrics import MATCHES
from profiles.models import Interest
from profiles.selectors import profile_get, profile_public
from profiles.services import interest_normalize
from realtime.events import send_event, user_group
from switchboard.redis import bus, key
from switchboard.text import text_storable

from . import pool, selectors
from .exceptions import Conflict, Invalid, MatchError, NotFound, RateLimited, Unavailable
from .models import Block, Match, Report

logger = logging.getLogger(__name__)
User = get_user_model()

_UNSET = object()
RATE_WINDOW_MS = 60_000
SIGNAL_KINDS = ("offer", "answer", "ice")
SDP_MID_MAX_CHARS = 64
ICE_UFRAG_MAX_CHARS = 256


# -- rate limit -------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the window starts again

    def headers(self) -> dict[str, str]:
        """Return the ``X-RateLimit-*`` headers (plus ``Retry-After`` when refused)."""
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.reset_seconds)
        return out


def match_rate_take(*, user_id: int) -> RateLimit:
    """Count one match request of the user (issue #5: at most 10 a minute)."""
    limit = settings.LIMITS["MATCH_RATE_PER_MINUTE"]
    count, ttl_ms = pool.rate_take(name=key("rl", "match", user_id), window_ms=RATE_WINDOW_MS)
    return RateLimit(
        allowed=count <= limit,
        limit=limit,
        remaining=max(0, limit - count),
        reset_seconds=max(1, math.ceil(ttl_ms / 1000)),
    )


def match_rate_check(*, user_id: int) -> RateLimit:
    """Take a rate token or raise ``RateLimited`` carrying ``retry_after`` seconds."""
    rate = match_rate_take(user_id=user_id)
    if not rate.allowed:
        raise RateLimited(
            f"At most {rate.limit} match requests a minute; try again in {rate.reset_seconds} s.",
            retry_after=rate.reset_seconds,
        )
    return rate


# -- entering the pool ------------------------------------------------------------------


def avoid_ensure(*, user_id: int, force: bool = False) -> None:
    """Rebuild the user's avoid set (blocks, recent partners) from PostgreSQL if missing."""
    if not force and pool.avoid_complete(user_id=user_id):
        return
    pool.avoid_write(user_id=user_id, until_by_user=selectors.avoid_list(user_id=user_id),
                     complete=True)  # fmt: skip


def _interests_for(profile, interests: object) -> list[str]:
    """Return the slugs to match on: the profile's, or the given ones that exist.

    Unknown interests are ignored (not created): matching only counts interests of the
    catalogue, and a typo would otherwise become an interest nobody shares.
    """
    if interests is _UNSET or interests is None:
        return [i.slug for i in profile.interests.all()]
    limit = settings.LIMITS["INTERESTS_PER_USER"]
    if not isinstance(interests, list) or len(interests) > limit:
        raise Invalid(f"interests must be a list of at most {limit} interests.")
    slugs: list[str] = []
    for text in interests:
        try:
            slug, _ = interest_normalize(text=text)
        except ValidationError as exc:
            raise Invalid(exc.messages[0]) from None
        if slug not in slugs:
            slugs.append(slug)
    known = set(Interest.objects.filter(slug__in=slugs).values_list("slug", flat=True))
    return [s for s in slugs if s in known]


def match_enter(
    *,
    user_id: int,
    channel_name: str = "",
    interests: object = _UNSET,
    region_mode: object = "prefer",
    now: int | None = None,
) -> dict:
    """Put the user's ticket in the pool (once) and try to match them at once."""
    if region_mode not in pool.REGION_MODES:
        raise Invalid("region must be one of: " + ", ".join(pool.REGION_MODES) + ".")
    profile = profile_get(user_id=user_id)
    if profile is None:
        raise NotFound("No such user.")
    slugs = _interests_for(profile, interests)
    active = selectors.match_active_for_user(user_id=user_id)
    if active is not None:
        raise Conflict("You are in a match; skip it first.", match_id=active.pk)
    avoid_ensure(user_id=user_id)
    decision = pool.pool_enter(
        user_id=user_id,
        language=profile.language,
        region=profile.region,
        region_mode=region_mode,
        interests=slugs,
        channel=channel_name,
        now=now,
    )
    decision, match = _conclude(user_id=user_id, decision=decision, now=now)
    return {
        "status": "matched" if match else "waiting",
        "match_id": match.pk if match else None,
        "step": decision.step,
        "interests": slugs,
        "refresh_seconds": settings.LIMITS["MATCH_TICKET_REFRESH_SECONDS"],
    }


def match_decide(*, user_id: int, now: int | None = None) -> Match | None:
    """Run the decision again for a waiting user; return the match if one was made."""
    decision = pool.pool_decide(user_id=user_id, now=now)
    return _conclude(user_id=user_id, decision=decision, now=now)[1]


def _conclude(
    *, user_id: int, decision: pool.Decision, now: int | None
) -> tuple[pool.Decision, Match | None]:
    if decision.status == "rebuild":  # the avoid set expired between check and script
        avoid_ensure(user_id=user_id, force=True)
        decision = pool.pool_decide(user_id=user_id, now=now)
    if decision.status == "busy":
        raise Conflict("You are in a match; skip it first.")
    if decision.status == "full":
        raise Unavailable("The pool is full; try again in a minute.")
    if decision.status != "matched":
        return decision, None
    try:
        match = match_record(
            seeker_id=user_id, partner_id=decision.partner_id, shared=decision.shared
        )
    except Exception:
        # Both already left the pool; free them to enter again rather than wait 30 s.
        bus().delete(key("mm", "cur", user_id), key("mm", "cur", decision.partner_id))
        raise
    return decision, match


def match_record(*, seeker_id: int, partner_id: int, shared: list[str]) -> Match:
    """Store a decided match, open its room and tell both users on every connection."""
    with transaction.atomic():
        match = Match.objects.create(
            user_a_id=seeker_id, user_b_id=partner_id, shared_interests=shared
        )
        transaction.on_commit(MATCHES.inc)  # GET /metrics
        profiles = {uid: profile_get(user_id=uid) for uid in (seeker_id, partner_id)}
        for me, other in ((seeker_id, partner_id), (partner_id, seeker_id)):
            send_event(
                event="match.found",
                data={
                    "match_id": match.pk,
                    "partner": profile_public(profile=profiles[other]),
                    "shared_interests": list(shared),
                    "initiator": me == seeker_id,
                    "created_at": match.created_at.isoformat(),
                },
                groups=[user_group(me)],
            )
    ttl = settings.LIMITS["MATCH_MAX_SECONDS"]
    pipe = bus().pipeline(transaction=False)
    pipe.set(selectors.room_key(match.pk), f"{seeker_id}:{partner_id}", ex=ttl)
    pipe.set(key("mm", "cur", seeker_id), match.pk, ex=ttl)
    pipe.set(key("mm", "cur", partner_id), match.pk, ex=ttl)
    pipe.execute()
    return match


def match_cancel(*, user_id: int, channel_name: str = "") -> bool:
    """Leave the pool; with ``channel_name``, only if that connection entered."""
    return pool.pool_leave(user_id=user_id, channel=channel_name)


# -- the room ---------------------------------------------------------------------------


def match_end(*, match_id: int, reason: str, by_user_id: int | None = None) -> bool:
    """End an open match for both users; return False if it had already ended."""
    with transaction.atomic():
        updated = Match.objects.filter(pk=match_id, ended_at__isnull=True).update(
            ended_at=timezone.now(), end_reason=reason, ended_by_id=by_user_id
        )
        if not updated:
            return False
        match = Match.objects.get(pk=match_id)
        for uid in (match.user_a_id, match.user_b_id):
            send_event(
                event="match.ended",
                data={"match_id": match.pk, "reason": reason, "by_user_id": by_user_id},
                groups=[user_group(uid)],
            )
    bus().delete(
        selectors.room_key(match.pk),
        key("mm", "cur", match.user_a_id),
        key("mm", "cur", match.user_b_id),
    )
    return True


def match_skip(
    *,
    user_id: int,
    match_id: object = None,
    requeue: object = False,
    channel_name: str = "",
    interests: object = _UNSET,
    region_mode: object = "prefer",
) -> dict:
    """End my open match (skip / next); with ``requeue``, enter the pool again."""
    if not isinstance(requeue, bool):
        raise Invalid("requeue must be true or false.")
    if match_id is None:
        active = selectors.match_active_for_user(user_id=user_id)
        if active is None:
            raise Invalid("You are not in a match.")
        match_id = active.pk
    match = selectors.match_for_member(match_id=match_id, user_id=user_id)
    if match.ended_at is not None:
        raise Invalid("This match has already ended.")
    if requeue:  # refused before anything changes
        match_rate_check(user_id=user_id)
    if not match_end(match_id=match.pk, reason=Match.EndReason.SKIP, by_user_id=user_id):
        raise Invalid("This match has already ended.")
    result: dict = {"ended": match.pk}
    if requeue:
        result["enter"] = match_enter(
            user_id=user_id,
            channel_name=channel_name,
            interests=interests,
            region_mode=region_mode,
        )
    return result


def room_say(*, user_id: int, match_id: object, text: object) -> dict:
    """Relay a text line to my partner in the room (not stored anywhere)."""
    partner = selectors.room_partner(match_id=match_id, user_id=user_id)
    limit = settings.LIMITS["MATCH_SAY_MAX_CHARS"]
    if not isinstance(text, str) or not text.strip():
        raise Invalid("text must be a non-empty string.")
    if len(text) > limit:
        raise Invalid(f"text has at most {limit} characters.", limit=limit)
    sent_at = timezone.now().isoformat()
    send_event(
        event="match.message",
        data={"match_id": match_id, "from_user_id": user_id, "text": text, "sent_at": sent_at},
        groups=[user_group(partner)],
    )
    return {"sent_at": sent_at}


def _short_str(value: object, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise Invalid(f"{name} must be a string of at most {limit} characters, or null.")
    return value


def _signal_payload(kind: object, payload: object) -> dict | None:
    """Return the payload reduced to its known fields, or raise ``Invalid``."""
    if kind in ("offer", "answer"):
        limit = settings.LIMITS["MATCH_SDP_MAX_CHARS"]
        sdp = payload.get("sdp") if isinstance(payload, dict) else None
        if not isinstance(sdp, str) or not sdp:
            raise Invalid(f'An {kind} carries {{"sdp": "..."}}.')
        if len(sdp) > limit:
            raise Invalid(f"An SDP has at most {limit} characters.", limit=limit)
        return {"type": kind, "sdp": sdp}
    if kind == "ice":
        if payload is None:
            return None  # end of candidates
        limit = settings.LIMITS["MATCH_ICE_MAX_CHARS"]
        candidate = payload.get("candidate") if isinstance(payload, dict) else None
        if not isinstance(candidate, str):
            raise Invalid('An ice signal carries {"candidate": "..."} or null.')
        if len(candidate) > limit:
            raise Invalid(f"A candidate has at most {limit} characters.", limit=limit)
        index = payload.get("sdpMLineIndex")
        if index is not None and (
            not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 1024
        ):
            raise Invalid("sdpMLineIndex must be a small integer or null.")
        return {
            "candidate": candidate,
            "sdpMid": _short_str(payload.get("sdpMid"), "sdpMid", SDP_MID_MAX_CHARS),
            "sdpMLineIndex": index,
            "usernameFragment": _short_str(
                payload.get("usernameFragment"), "usernameFragment", ICE_UFRAG_MAX_CHARS
            ),
        }
    raise Invalid("kind must be one of: " + ", ".join(SIGNAL_KINDS) + ".")


def room_signal(*, user_id: int, match_id: object, kind: object, payload: object) -> None:
    """Relay a WebRTC offer, answer or ICE candidate to my partner in the room, only."""
    partner = selectors.room_partner(match_id=match_id, user_id=user_id)
    clean = _signal_payload(kind, payload)
    send_event(
        event="match.signal",
        data={"match_id": match_id, "from_user_id": user_id, "kind": kind, "payload": clean},
        groups=[user_group(partner)],
    )


# -- safety -----------------------------------------------------------------------------


def _avoid_forever(a: int, b: int) -> None:
    for me, other in ((a, b), (b, a)):
        pool.avoid_write(user_id=me, until_by_user={other: pool.AVOID_FOREVER_MS}, complete=False)


def block_create(*, user_id: int, match_id: object = None, blocked_id: object = None) -> Block:
    """Block my partner in ``match_id`` (or ``blocked_id``): never matched again, no messages."""
    match = None
    if match_id is not None:
        match = selectors.match_for_member(match_id=match_id, user_id=user_id)
        blocked_id = match.partner_of(user_id)
    if not isinstance(blocked_id, int) or isinstance(blocked_id, bool):
        raise Invalid("Give match_id or user_id.")
    if blocked_id == user_id:
        raise Invalid("You cannot block yourself.")
    if not User.objects.filter(pk=blocked_id).exists():
        raise NotFound("No such user.")
    with transaction.atomic():
        block, _ = Block.objects.get_or_create(
            blocker_id=user_id, blocked_id=blocked_id, defaults={"match": match}
        )
        transaction.on_commit(lambda: _avoid_forever(user_id, blocked_id))
    for open_match in Match.objects.filter(
        Q(user_a_id=user_id, user_b_id=blocked_id) | Q(user_a_id=blocked_id, user_b_id=user_id),
        ended_at__isnull=True,
    ):
        match_end(match_id=open_match.pk, reason=Match.EndReason.BLOCK, by_user_id=user_id)
    return block


def report_create(*, user_id: int, match_id: object, reason: object, text: object = "") -> Report:
    """Report my partner in a match (open or ended) for admins to review."""
    match = selectors.match_for_member(match_id=match_id, user_id=user_id)
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
    )


# -- periodic work (Celery Beat: matching.tasks.pool_sweep) -----------------------------


def matches_expire(*, limit: int) -> int:
    """End rooms open longer than LIMITS["MATCH_MAX_SECONDS"]; return how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.LIMITS["MATCH_MAX_SECONDS"])
    ids = Match.objects.filter(ended_at__isnull=True, created_at__lt=cutoff).values_list(
        "pk", flat=True
    )[:limit]
    return sum(match_end(match_id=pk, reason=Match.EndReason.EXPIRED) for pk in list(ids))


def pool_sweep(*, now: int | None = None) -> dict:
    """Expire stale tickets, re-decide for seekers whose step relaxed, end stale rooms.

    Idempotent: run twice, the second run finds nothing to do. The Celery task
    (``matching.tasks.pool_sweep``) runs it under a Redis lock so two never overlap.
    """
    batch = settings.LIMITS["MATCH_SWEEP_BATCH"]
    expired = pool.pool_expire(limit=batch, now=now)
    matched = 0
    for user_id in pool.pool_due(limit=batch, now=now):
        try:
            matched += match_decide(user_id=user_id, now=now) is not None
        except MatchError:
            logger.info("user=%s sweep decision refused", user_id, exc_info=True)
    ended = matches_expire(limit=batch)
    return {"expired": expired, "matched": matched, "rooms_ended": ended}
