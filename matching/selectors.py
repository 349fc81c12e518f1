"""Reads for Meet: whom to avoid, matches and rooms, trending interests, ICE servers."""

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import cast

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.errors import Forbidden, Invalid, NotFound
from core.redis import bus
from profiles.selectors import profile_get, profile_public
from relations.selectors import blocked_either_way, blocks_made

from . import pool
from .models import Match


def avoid_list(*, user_id: int) -> dict[int, float]:
    """Return whom the user must not meet (id -> until, ms) according to PostgreSQL."""
    avoid: dict[int, float] = dict.fromkeys(
        blocked_either_way(user_id=user_id), pool.AVOID_FOREVER_MS
    )
    window = settings.LIMITS["MATCH_RECENT_PARTNER_SECONDS"]
    since = timezone.now() - timedelta(seconds=window)
    for a, b, created in Match.objects.filter(
        Q(user_a_id=user_id) | Q(user_b_id=user_id), created_at__gte=since
    ).values_list("user_a_id", "user_b_id", "created_at"):
        other = b if a == user_id else a
        until = (created.timestamp() + window) * 1000
        avoid[other] = max(avoid.get(other, 0), until)
    return avoid


def waiting_status(*, user_id: int, now: int | None = None) -> dict:
    """Return what my waiting ticket searches for, who could match and when it widens.

    Reads Redis only, at a constant cost (``pool.pool_status``): waiting clients poll it
    every ``MATCH_STATUS_REFRESH_SECONDS`` (docs/protocol.md, ``match.waiting``).
    """
    config = pool.PoolConfig.from_settings()
    now = pool.now_ms() if now is None else now
    recent_seconds = settings.LIMITS["MATCH_RECENT_PARTNER_SECONDS"]
    status = pool.pool_status(user_id=user_id, now=now, config=config)
    if status is None:
        return {"waiting": False, "recent_partner_seconds": recent_seconds}
    # The step after this one, if it changes anything: step 1 drops the shared interest,
    # step 2 the region preference (only a "prefer" seeker with a region has one).
    widens: dict | None = None
    if status.step == 0:
        widens = {"step": 1, "drops": "interests", "after_ms": config.relax_ms[0]}
    elif status.step == 1 and status.region and status.region_mode == "prefer":
        widens = {"step": 2, "drops": "region", "after_ms": config.relax_ms[1]}
    next_step = None
    if widens is not None:
        at = status.joined_ms + widens.pop("after_ms")
        next_step = {
            **widens,
            "at": datetime.fromtimestamp(at / 1000, tz=UTC).isoformat(),
            "in_seconds": round(max(at - now, 0) / 1000, 1),
        }
    return {
        "waiting": True,
        "language": status.language,
        "region": status.region,
        "region_mode": status.region_mode,
        "same_region": status.same_region,
        "interests": status.interests,
        "step": status.step,
        "others_waiting": status.others_waiting,
        "next_step": next_step,
        "recent_partners": status.recent_partners,
        "recent_partner_seconds": recent_seconds,
        "waited_seconds": round(max(now - status.joined_ms, 0) / 1000, 1),
        "refresh_seconds": settings.LIMITS["MATCH_STATUS_REFRESH_SECONDS"],
    }


def blocks_list(*, user_id: int) -> list[dict]:
    """Return the people I blocked, newest first (at most ``BLOCK_LIST_MAX``)."""
    rows = []
    for block in blocks_made(user_id=user_id, limit=settings.LIMITS["BLOCK_LIST_MAX"]):
        user = block.blocked
        profile = getattr(user, "profile", None)
        rows.append(
            {
                "user_id": user.pk,
                "username": user.get_username(),
                "display_name": (profile.display_name if profile else "") or user.get_username(),
                "created_at": block.created_at.isoformat(),
                "match_id": block.match_id,
            }
        )
    return rows


def match_active_for_user(*, user_id: int) -> Match | None:
    """Return the user's open match (room), if any."""
    return (
        Match.objects.filter(Q(user_a_id=user_id) | Q(user_b_id=user_id), ended_at__isnull=True)
        .order_by("-created_at")
        .first()
    )


def match_view(*, match: Match, user_id: int) -> dict:
    """Return a match as its member ``user_id`` sees it (``match.found``'s data)."""
    partner = profile_get(user_id=match.partner_of(user_id))
    return {
        "match_id": match.pk,
        "partner": profile_public(profile=partner) if partner is not None else {},
        "shared_interests": list(match.shared_interests),
        # user_a is the seeker whose decision found the pair: it makes the first offer.
        "initiator": user_id == match.user_a_id,
        "created_at": match.created_at.isoformat(),
    }


def match_for_member(*, match_id: object, user_id: int) -> Match:
    """Return a match (open or ended) the user took part in, or raise."""
    if not isinstance(match_id, int) or isinstance(match_id, bool):
        raise Invalid("match_id must be an integer.")
    match = Match.objects.filter(pk=match_id).first()
    if match is None:
        raise NotFound("No such match.")
    if user_id not in (match.user_a_id, match.user_b_id):
        raise Forbidden("You are not in this match.")
    return match


def room_id_check(*, match_id: object) -> int:
    """Return ``match_id`` if it is an integer, else raise ``invalid``."""
    if not isinstance(match_id, int) or isinstance(match_id, bool):
        raise Invalid("match_id must be an integer.")
    return match_id


def room_partner(*, match_id: object, user_id: int) -> int:
    """Return the other member of an open room, or raise (not yours: ``forbidden``).

    Redis answers the hot path (one GET per text or signalling frame); PostgreSQL answers
    when the key is missing and the key is written back.
    """
    match_id = room_id_check(match_id=match_id)
    # redis-py types a command for both clients (``Awaitable[T] | T``); sync ones return T.
    name = pool.room_key(match_id)
    members = cast(str | None, bus(name).get(name))
    return room_partner_in(match_id=match_id, user_id=user_id, members=members)


def room_partner_in(*, match_id: int, user_id: int, members: str | None) -> int:
    """``room_partner`` given the room key's value already read (None: it was missing)."""
    if members is None:
        name = pool.room_key(match_id)
        match = Match.objects.filter(pk=match_id).first()
        if match is None:
            raise NotFound("No such match.")
        if user_id not in (match.user_a_id, match.user_b_id):
            raise Forbidden("You are not in this match.")
        if match.ended_at is not None:
            raise Invalid("This match has ended.")
        members = f"{match.user_a_id}:{match.user_b_id}"
        bus(name).set(name, members, ex=settings.LIMITS["MATCH_MAX_SECONDS"])
    a, b = (int(x) for x in members.split(":"))
    if user_id not in (a, b):
        raise Forbidden("You are not in this match.")
    return b if user_id == a else a


def trending_top(*, limit: int, day_ms: int | None = None) -> list[dict]:
    """Return the day's most shared interests with their scores, best first."""
    name = pool.trending_key(day_ms if day_ms is not None else pool.now_ms())
    rows = cast(list[tuple[str, float]], bus(name).zrevrange(name, 0, limit - 1, withscores=True))
    return [
        {"interest": slug, "score": int(score), "rank": i}
        for i, (slug, score) in enumerate(rows, start=1)
    ]


def trending_rank(*, interest: str, day_ms: int | None = None) -> dict:
    """Return one interest's 1-based rank and score today (rank None when absent)."""
    name = pool.trending_key(day_ms if day_ms is not None else pool.now_ms())
    pipe = bus(name).pipeline(transaction=False)
    pipe.zrevrank(name, interest)
    pipe.zscore(name, interest)
    rank, score = pipe.execute()
    return {
        "interest": interest,
        "rank": None if rank is None else rank + 1,
        "score": int(score or 0),
    }


def ice_servers(*, user_id: int, now: float | None = None) -> dict:
    """Return the ICE servers for a client, with TURN credentials valid for a while.

    coturn's REST convention (``use-auth-secret``): username ``"<expiry>:<user id>"``,
    credential ``base64(HMAC-SHA1(secret, username))``; coturn recomputes it and refuses
    it after the expiry.
    """
    ttl = settings.LIMITS["TURN_CREDENTIAL_TTL_SECONDS"]
    servers: list[dict] = []
    if settings.MEET_STUN_URLS:
        servers.append({"urls": list(settings.MEET_STUN_URLS)})
    if settings.MEET_TURN_URLS and settings.MEET_TURN_SECRET:
        expiry = int((now if now is not None else time.time()) + ttl)
        username = f"{expiry}:{user_id}"
        digest = hmac.new(
            settings.MEET_TURN_SECRET.encode(), username.encode(), hashlib.sha1
        ).digest()
        servers.append(
            {
                "urls": list(settings.MEET_TURN_URLS),
                "username": username,
                "credential": base64.b64encode(digest).decode(),
            }
        )
    return {"ice_servers": servers, "ttl": ttl}


def match_history(*, user_id: int, limit: int = 20) -> list[Match]:
    """Return the user's latest matches, newest first (admin review)."""
    return list(
        Match.objects.filter(Q(user_a_id=user_id) | Q(user_b_id=user_id))
        .select_related("user_a", "user_b")
        .prefetch_related("reports")
        .order_by("-created_at")[:limit]
    )
