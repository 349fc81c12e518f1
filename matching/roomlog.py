"""A match room's short memory, for reports: its recent signalling metadata and last lines.

The room's text is relayed, not stored (``services.rooms.room_say``); a report may need the
last few lines, and a moderator wants to see which signals went when (a partner who never
answered an offer, a flood of candidates). So each open room keeps in Redis (bus):

- ``mm:sig:<match>``: the last ``MATCH_SIGNAL_LOG_MAX`` signals' metadata, JSON
  ``{"at": ms, "from": uid, "kind": "offer" | "answer" | "ice", "size": chars}``, never the
  SDP or the candidate itself;
- ``mm:lines:<match>``: the last ``MATCH_ROOM_LINES_MAX`` text lines,
  ``{"at": ms, "from": uid, "text": ...}``.

Each write is one pipeline (``RPUSH``, ``LTRIM``, ``EXPIRE``: one round trip, bounded
length, re-armed TTL ``TTLS["ROOM_RECORD"]``); when the match ends both keys get the short
``TTLS["ROOM_RECORD_AFTER_END"]``, so a report made just after skipping still finds them.
``report_create`` copies the metadata into the report, and the lines only when the
reporter asks (``attach_lines``): otherwise the lines expire unread
(docs/security.md, "Retention").
"""

import json
from typing import Any, cast

import redis
from django.conf import settings

from core.redis import bus

from . import pool


def _push(pipe: Any, name: str, entry: dict[str, Any], keep: int) -> None:
    pipe.rpush(name, json.dumps(entry, separators=(",", ":")))
    pipe.ltrim(name, -keep, -1)
    pipe.expire(name, settings.TTLS["ROOM_RECORD"])


def signal_record(*, match_id: int, user_id: int, kind: str, size: int, at_ms: int) -> None:
    """Append one signal's metadata to the room's bounded record."""
    pipe = bus().pipeline(transaction=False)
    entry = {"at": at_ms, "from": user_id, "kind": kind, "size": size}
    _push(pipe, pool.signals_key(match_id), entry, settings.LIMITS["MATCH_SIGNAL_LOG_MAX"])
    pipe.execute()


def line_record(*, match_id: int, user_id: int, text: str, at_ms: int) -> None:
    """Append one text line to the room's bounded ring."""
    pipe = bus().pipeline(transaction=False)
    entry = {"at": at_ms, "from": user_id, "text": text}
    _push(pipe, pool.lines_key(match_id), entry, settings.LIMITS["MATCH_ROOM_LINES_MAX"])
    pipe.execute()


def record_end(*, pipe: "redis.client.Pipeline", match_id: int) -> None:
    """Queue on ``pipe`` the short life left to an ended room's record."""
    after = settings.TTLS["ROOM_RECORD_AFTER_END"]
    pipe.expire(pool.signals_key(match_id), after)
    pipe.expire(pool.lines_key(match_id), after)


def _read(name: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in cast(list[str], bus().lrange(name, 0, -1))]


def signals_read(*, match_id: int) -> list[dict[str, Any]]:
    """The room's recorded signalling metadata, oldest first (empty once expired)."""
    return _read(pool.signals_key(match_id))


def lines_read(*, match_id: int) -> list[dict[str, Any]]:
    """The room's last text lines, oldest first (empty once expired)."""
    return _read(pool.lines_key(match_id))
