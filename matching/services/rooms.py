"""The room of a match: ending it, skipping, coming back to it, text and WebRTC signalling."""

import secrets
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import Invalid
from core.events import send_event, user_group
from core.redis import bus
from core.text import text_storable
from profiles.selectors import profile_get

from .. import liveness, pool, roomlog, selectors
from ..models import Match
from .entering import (
    UNSET,
    match_enter,
    match_rate_check,
    region_mode_check,
    region_mode_usable,
)

SIGNAL_KINDS = ("offer", "answer", "ice")


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
    pipe = bus(pool.room_key(match.pk)).pipeline(transaction=False)  # all mm: one server
    pipe.delete(
        pool.room_key(match.pk), pool.cur_key(match.user_a_id), pool.cur_key(match.user_b_id)
    )
    pipe.zrem(liveness.live_key(), match.user_a_id, match.user_b_id)
    roomlog.record_end(pipe=pipe, match_id=match.pk)
    pipe.execute()
    return True


def match_skip(
    *,
    user_id: int,
    match_id: object = None,
    requeue: object = False,
    channel_name: str = "",
    interests: object = UNSET,
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
    # Both members may skip at once: the one whose end comes second still gets what it
    # asked for, "next" (requeued), rather than an error.
    if match.ended_at is not None and not requeue:
        raise Invalid("This match has already ended.")
    if requeue:  # refused before anything changes
        mode = region_mode_check(region_mode=region_mode)
        profile = profile_get(user_id=user_id)
        if profile is not None:
            region_mode_usable(profile=profile, region_mode=mode)
        match_rate_check(user_id=user_id)
    ended = match.ended_at is None and match_end(
        match_id=match.pk, reason=Match.EndReason.SKIP, by_user_id=user_id
    )
    if not ended and not requeue:
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


def match_current(*, user_id: int, rejoin: object = False) -> dict:
    """Return my open match (None if I am in none); with ``rejoin``, this view takes it over.

    A reload or a second tab calls it with ``rejoin``: the partner's connections are told
    (``match.rejoined``) so the WebRTC session is negotiated again, and my other
    connections learn that another view took the room (the ``rejoin_id`` tells a view its
    own event from another's: docs/subsystems/webrtc.md).
    """
    if not isinstance(rejoin, bool):
        raise Invalid("rejoin must be true or false.")
    active = selectors.match_active_for_user(user_id=user_id)
    if active is None:
        return {"match": None}
    result: dict = {"match": selectors.match_view(match=active, user_id=user_id)}
    if rejoin:
        rejoin_id = secrets.token_urlsafe(9)
        send_event(
            event="match.rejoined",
            data={"match_id": active.pk, "user_id": user_id, "rejoin_id": rejoin_id},
            groups=[user_group(active.user_a_id), user_group(active.user_b_id)],
        )
        result["rejoin_id"] = rejoin_id
    return result


def room_say(*, user_id: int, match_id: object, text: object) -> dict:
    """Relay a text line to my partner in the room (kept only in the room's short ring)."""
    room_id = selectors.room_id_check(match_id=match_id)
    limit = settings.LIMITS["MATCH_SAY_MAX_CHARS"]
    # A lone surrogate cannot travel (the channel layer encodes UTF-8): refuse it here, or
    # the frame would be acknowledged and the event lost after the reply.
    if not isinstance(text, str) or not text.strip() or not text_storable(text):
        raise Invalid("text must be a non-empty string of plain text.")
    if len(text) > limit:
        raise Invalid(f"text has at most {limit} characters.", limit=limit)
    now = timezone.now()
    sent_at = now.isoformat()

    def record() -> str | None:  # kept briefly for a report that attaches it (``roomlog``)
        at_ms = int(now.timestamp() * 1000)
        return roomlog.line_record(match_id=room_id, user_id=user_id, text=text, at_ms=at_ms)

    partner = _room_partner_recorded(match_id=room_id, user_id=user_id, record=record)
    send_event(
        event="match.message",
        data={"match_id": room_id, "from_user_id": user_id, "text": text, "sent_at": sent_at},
        groups=[user_group(partner)],
    )
    return {"sent_at": sent_at}


def _room_partner_recorded(*, match_id: int, user_id: int, record: Callable[[], str | None]) -> int:
    """``selectors.room_partner``, its membership read made by ``record`` (one round trip:
    the script records the frame only for a member and returns the room key)."""
    members = record()
    partner = selectors.room_partner_in(match_id=match_id, user_id=user_id, members=members)
    if members is None:  # the key was missing: written back from PostgreSQL now
        record()
    return partner


def _short_str(value: object, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit or not text_storable(value):
        raise Invalid(f"{name} must be a string of at most {limit} characters, or null.")
    return value


def _signal_payload(kind: object, payload: object) -> dict | None:
    """Return the payload reduced to its known fields, or raise ``Invalid``."""
    if kind in ("offer", "answer"):
        limit = settings.LIMITS["MATCH_SDP_MAX_CHARS"]
        sdp = payload.get("sdp") if isinstance(payload, dict) else None
        if not isinstance(sdp, str) or not sdp or not text_storable(sdp):
            raise Invalid(f'An {kind} carries {{"sdp": "..."}} (plain text).')
        if len(sdp) > limit:
            raise Invalid(f"An SDP has at most {limit} characters.", limit=limit)
        return {"type": kind, "sdp": sdp}
    if kind == "ice":
        if payload is None:
            return None  # end of candidates
        limit = settings.LIMITS["MATCH_ICE_MAX_CHARS"]
        candidate = payload.get("candidate") if isinstance(payload, dict) else None
        if (
            not isinstance(candidate, str)
            or not isinstance(payload, dict)
            or not text_storable(candidate)
        ):
            raise Invalid('An ice signal carries {"candidate": "..."} (plain text) or null.')
        if len(candidate) > limit:
            raise Invalid(f"A candidate has at most {limit} characters.", limit=limit)
        index = payload.get("sdpMLineIndex")
        if index is not None and (
            not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 1024
        ):
            raise Invalid("sdpMLineIndex must be a small integer or null.")
        return {
            "candidate": candidate,
            "sdpMid": _short_str(
                payload.get("sdpMid"), "sdpMid", settings.LIMITS["MATCH_SDP_MID_MAX_CHARS"]
            ),
            "sdpMLineIndex": index,
            "usernameFragment": _short_str(
                payload.get("usernameFragment"),
                "usernameFragment",
                settings.LIMITS["MATCH_ICE_UFRAG_MAX_CHARS"],
            ),
        }
    raise Invalid("kind must be one of: " + ", ".join(SIGNAL_KINDS) + ".")


def _signal_size(clean: dict | None) -> int:
    """The size the record keeps of a signal: its SDP's or candidate's characters (0: end)."""
    if clean is None:
        return 0
    return len(clean.get("sdp") or clean.get("candidate") or "")


def room_signal(*, user_id: int, match_id: object, kind: object, payload: object) -> None:
    """Relay a WebRTC offer, answer or ICE candidate to my partner in the room, only."""
    room_id = selectors.room_id_check(match_id=match_id)
    clean = _signal_payload(kind, payload)
    assert isinstance(kind, str)  # _signal_payload refused anything else
    at_ms = pool.now_ms()

    def record() -> str | None:  # its metadata, never its content (``roomlog``)
        return roomlog.signal_record(
            match_id=room_id, user_id=user_id, kind=kind, size=_signal_size(clean), at_ms=at_ms
        )

    partner = _room_partner_recorded(match_id=room_id, user_id=user_id, record=record)
    send_event(
        event="match.signal",
        data={"match_id": room_id, "from_user_id": user_id, "kind": kind, "payload": clean},
        groups=[user_group(partner)],
    )
