"""A match room's short memory, for reports: its recent signalling metadata and last lines.

The room's text is relayed, not stored (``services.rooms.room_say``); a report may need the
last few lines, and a moderator wants to see which signals went when (a partner who never
answered an offer, a flood of candidates). So each open room keeps in Redis (bus):

- ``mm:sig:<match>``: the last ``MATCH_SIGNAL_LOG_MAX`` signals' metadata, JSON
  ``{"at": ms, "from": uid, "kind": "offer" | "answer" | "ice", "size": chars}``, never the
  SDP or the candidate itself;
- ``mm:lines:<match>``: the last ``MATCH_ROOM_LINES_MAX`` text lines,
  ``{"at": ms, "from": uid, "text": ...}``.

Each write is one script call (``roomlog.lua``) that also reads the room's membership, the
read every signal and line makes anyway: so recording costs no extra round trip, keeps the
list bounded and re-arms its TTL ``TTLS["ROOM_RECORD"]``. When the match ends both keys get
the short ``TTLS["ROOM_RECORD_AFTER_END"]``, so a report made just after skipping still
finds them.
``report_create`` copies the metadata into the report, and the lines only when the
reporter asks (``attach_lines``): otherwise the lines expire unread
(docs/security.md, "Retention").
"""

import json
from pathlib import Path
from typing import Any, cast

import redis
from django.conf import settings

from core.redis import bus
from core.scripts import Script

from . import pool

RECORD_SCRIPT = Script(Path(__file__).with_name("roomlog.lua"))


def _record(
    *, match_id: int, user_id: int, name: str, entry: dict[str, Any], keep: int
) -> str | None:
    args = [user_id, json.dumps(entry, separators=(",", ":")), keep, settings.TTLS["ROOM_RECORD"]]
    members = RECORD_SCRIPT.run(keys=[pool.room_key(match_id), name], args=args)
    return None if members is None else str(members)


def signal_record(*, match_id: int, user_id: int, kind: str, size: int, at_ms: int) -> str | None:
    """Append one signal's metadata to the room's record if ``user_id`` is a member.

    Return the room's members (``"<a>:<b>"``, the value of ``pool.room_key``), or None when
    that key is missing: the membership read of ``selectors.room_partner``, in the same
    round trip.
    """
    entry = {"at": at_ms, "from": user_id, "kind": kind, "size": size}
    return _record(
        match_id=match_id,
        user_id=user_id,
        name=pool.signals_key(match_id),
        entry=entry,
        keep=settings.LIMITS["MATCH_SIGNAL_LOG_MAX"],
    )


def line_record(*, match_id: int, user_id: int, text: str, at_ms: int) -> str | None:
    """Append one text line to the room's ring if ``user_id`` is a member (as ``signal_record``)."""
    return _record(
        match_id=match_id,
        user_id=user_id,
        name=pool.lines_key(match_id),
        entry={"at": at_ms, "from": user_id, "text": text},
        keep=settings.LIMITS["MATCH_ROOM_LINES_MAX"],
    )


def record_end(*, pipe: "redis.client.Pipeline", match_id: int) -> None:
    """Queue on ``pipe`` the short life left to an ended room's record."""
    after = settings.TTLS["ROOM_RECORD_AFTER_END"]
    pipe.expire(pool.signals_key(match_id), after)
    pipe.expire(pool.lines_key(match_id), after)


def _read(name: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in cast(list[str], bus(name).lrange(name, 0, -1))]


def signals_read(*, match_id: int) -> list[dict[str, Any]]:
    """The room's recorded signalling metadata, oldest first (empty once expired)."""
    return _read(pool.signals_key(match_id))


def lines_read(*, match_id: int) -> list[dict[str, Any]]:
    """The room's last text lines, oldest first (empty once expired)."""
    return _read(pool.lines_key(match_id))
