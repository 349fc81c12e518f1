"""Entering the Meet pool: the rate limit, the decision's inputs, recording a match."""

import time
from typing import cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from core.errors import Conflict, Invalid, NotFound, RateLimited, Unavailable
from core.events import send_event, user_group
from core.metrics import MATCHES
from core.ratelimit import RateLimit, window_take
from core.redis import bus, key
from profiles.interests import interest_normalize
from profiles.models import Interest, Profile
from profiles.selectors import profile_get

from .. import liveness, pool, selectors
from ..models import Match

# "Not given" (the profile's interests), as opposed to an explicit None or [].
UNSET = object()


def match_rate_take(*, user_id: int) -> RateLimit:
    """Count one match request of the user (issue #5: at most 10 a minute)."""
    return window_take(
        name=key("rl", "match", user_id),
        limit=settings.LIMITS["MATCH_RATE_PER_MINUTE"],
        window_seconds=settings.LIMITS["MATCH_RATE_WINDOW_SECONDS"],
    )


def match_rate_check(*, user_id: int) -> RateLimit:
    """Take a rate token or raise ``RateLimited`` carrying ``retry_after`` seconds."""
    rate = match_rate_take(user_id=user_id)
    if not rate.allowed:
        raise RateLimited(
            f"At most {rate.limit} match requests a minute; try again in {rate.reset_seconds} s.",
            retry_after=rate.reset_seconds,
            headers=rate.headers(),
        )
    return rate


def avoid_ensure(*, user_id: int, force: bool = False) -> None:
    """Rebuild the user's avoid set (blocks, recent partners) from PostgreSQL if missing."""
    if not force and pool.avoid_complete(user_id=user_id):
        return
    avoid = selectors.avoid_list(user_id=user_id)
    pool.avoid_write(user_id=user_id, until_by_user=avoid, complete=True)


def _interests_for(profile: Profile, interests: object) -> tuple[list[str], list[str]]:
    """Return the slugs to match on (the profile's, or the given ones that exist) and the
    given ones that were ignored.

    Unknown interests are ignored (not created), and the reply names them: matching only
    counts interests of the catalogue, and a typo would otherwise become an interest nobody
    shares. Refusing the whole search for one typo would be harsher than telling.
    """
    if interests is UNSET or interests is None:
        return [i.slug for i in profile.interests.all()], []
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
    return [s for s in slugs if s in known], [s for s in slugs if s not in known]


def region_mode_check(*, region_mode: object) -> str:
    """Return ``region_mode`` if it is one of the pool's region modes, or raise ``Invalid``."""
    # ``in`` on a dict hashes its operand: a list or an object from JSON would raise TypeError.
    if not isinstance(region_mode, str) or region_mode not in pool.REGION_MODES:
        raise Invalid("region must be one of: " + ", ".join(pool.REGION_MODES) + ".")
    return region_mode


def region_mode_usable(*, profile: Profile, region_mode: str) -> None:
    """Refuse "only my region" for a profile without a region (it could never match)."""
    if region_mode == "require" and not profile.region:
        raise Invalid(
            '"Only my region" needs a region in your profile: set one there, or search with'
            ' "prefer" or "any".',
            fields={"region": "Your profile has no region."},
        )


def match_enter(
    *,
    user_id: int,
    channel_name: str = "",
    interests: object = UNSET,
    region_mode: object = "prefer",
    now: int | None = None,
) -> dict:
    """Put the user's ticket in the pool (once) and try to match them at once."""
    mode = region_mode_check(region_mode=region_mode)
    profile = profile_get(user_id=user_id)
    if profile is None:
        raise NotFound("No such user.")
    region_mode_usable(profile=profile, region_mode=mode)
    slugs, ignored = _interests_for(profile, interests)
    active = selectors.match_active_for_user(user_id=user_id)
    if active is not None:
        raise Conflict("You are in a match; skip it first.", match_id=active.pk)
    avoid_ensure(user_id=user_id)
    # A stale marker (its match ended since) is released and the enter tried again, once.
    for _ in range(2):
        decision = pool.pool_enter(
            user_id=user_id,
            language=profile.language,
            region=profile.region,
            region_mode=mode,
            interests=slugs,
            channel=channel_name,
            now=now,
        )
        if decision.status != "busy":
            break
        match_id = _busy_match_id(user_id=user_id, cur=decision.cur)
        if match_id is not None:
            raise Conflict("You are in a match; skip it first.", match_id=match_id)
    else:
        raise Unavailable("Your last match is still being closed; try again in a moment.")
    decision, match = _conclude(user_id=user_id, decision=decision, now=now)
    return {
        "status": "matched" if match else "waiting",
        "match_id": match.pk if match else None,
        "step": decision.step,
        "interests": slugs,
        "ignored_interests": ignored,
        "refresh_seconds": settings.LIMITS["MATCH_TICKET_REFRESH_SECONDS"],
        # What the waiting view explains (``match.waiting``); None once matched.
        "search": None if match else selectors.waiting_status(user_id=user_id, now=now),
    }


def _busy_match_id(*, user_id: int, cur: str | None) -> int | None:
    """Return the open match a busy user is in, waiting for one still being recorded.

    The script answers busy from the user's cur marker: a match id, or "0" between a
    decision (another seeker took this user) and its row. A conflict must name the match,
    so "0" is waited for (``MATCH_CONFLICT_WAIT_SECONDS``; the row is usually milliseconds
    away). None: the marker was left by a match that has ended (released here, so the
    caller may enter again). A decision whose process died before writing its row leaves
    "0" until ``MATCH_PENDING_SECONDS``: ``unavailable`` (retryable) meanwhile.
    """
    deadline = time.monotonic() + settings.LIMITS["MATCH_CONFLICT_WAIT_SECONDS"]
    while cur == "0" and time.monotonic() < deadline:
        time.sleep(0.02)
        name = pool.cur_key(user_id)
        cur = cast(str | None, bus(name).get(name))
    if cur is None:
        return None
    if cur == "0":
        active = selectors.match_active_for_user(user_id=user_id)
        if active is None:
            raise Unavailable("Your match is still being set up; try again in a moment.")
        return active.pk
    if Match.objects.filter(pk=int(cur), ended_at__isnull=True).exists():
        return int(cur)
    pool.cur_release(user_id=user_id, value=cur)
    return None


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
    if decision.status == "full":
        raise Unavailable("The pool is full; try again in a minute.")
    if decision.status != "matched":
        return decision, None
    assert decision.partner_id is not None  # set on every "matched" decision
    try:
        match = match_record(
            seeker_id=user_id, partner_id=decision.partner_id, shared=decision.shared
        )
    except Exception:
        # Both already left the pool; free them to enter again rather than wait 30 s.
        bus(pool.cur_key(user_id)).delete(pool.cur_key(user_id), pool.cur_key(decision.partner_id))
        raise
    return decision, match


def match_record(*, seeker_id: int, partner_id: int, shared: list[str]) -> Match:
    """Store a decided match, open its room and tell both users on every connection."""
    with transaction.atomic():
        match = Match.objects.create(
            user_a_id=seeker_id, user_b_id=partner_id, shared_interests=shared
        )
        transaction.on_commit(MATCHES.inc)  # GET /metrics
        for me in (seeker_id, partner_id):
            send_event(
                event="match.found",
                data=selectors.match_view(match=match, user_id=me),
                groups=[user_group(me)],
            )
    ttl = settings.LIMITS["MATCH_MAX_SECONDS"]
    pipe = bus(pool.room_key(match.pk)).pipeline(transaction=False)  # all mm: one server
    pipe.set(pool.room_key(match.pk), f"{seeker_id}:{partner_id}", ex=ttl)
    pipe.set(pool.cur_key(seeker_id), match.pk, ex=ttl)
    pipe.set(pool.cur_key(partner_id), match.pk, ex=ttl)
    pipe.execute()
    # Either may already be gone (a seeker can take a ticket whose socket died with its
    # process, within the ticket's TTL): the match then ends after the grace.
    liveness.members_watch(user_ids=(seeker_id, partner_id))
    return match


def match_cancel(*, user_id: int, channel_name: str = "") -> bool:
    """Leave the pool; with ``channel_name``, only if that connection entered."""
    return pool.pool_leave(user_id=user_id, channel=channel_name)
