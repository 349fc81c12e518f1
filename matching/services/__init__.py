"""Writes for Meet, one module per part (docs/subsystems/matching.md describes the flow).

The decision itself is atomic in Redis (``match.lua``); these functions prepare its inputs
(profile, avoid set rebuilt from PostgreSQL), record what it decided in PostgreSQL and push
events.

- ``entering``: the rate limit, entering the pool, recording a match;
- ``rooms``: ending and skipping a match, coming back to it, text lines and signalling;
- ``safety``: blocking (and unblocking) and reporting a partner;
- ``keep``: "keep in touch", a match both chose to keep becomes a direct conversation;
- ``sweep``: the periodic sweep.
"""

from .entering import (
    UNSET,
    avoid_ensure,
    match_cancel,
    match_decide,
    match_enter,
    match_rate_check,
    match_rate_take,
    match_record,
)
from .keep import match_keep
from .rooms import match_current, match_end, match_skip, room_say, room_signal
from .safety import block_create, block_remove, meet_exclude, report_create
from .sweep import matches_expire, partners_left_end, pool_sweep

__all__ = [
    "UNSET",
    "avoid_ensure",
    "block_create",
    "block_remove",
    "match_cancel",
    "match_current",
    "match_decide",
    "match_end",
    "match_enter",
    "match_keep",
    "match_rate_check",
    "match_rate_take",
    "match_record",
    "match_skip",
    "matches_expire",
    "meet_exclude",
    "partners_left_end",
    "pool_sweep",
    "report_create",
    "room_say",
    "room_signal",
]
