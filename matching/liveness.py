"""Whether the members of open matches still have a Meet connection (``liveness.lua``).

A partner who closes the tab, loses the network or whose web process dies is noticed: when
a match member's last connection in Meet has been away for
``LIMITS["MEET_PARTNER_GRACE_SECONDS"]``, the sweep ends the match (``partner_left``,
docs/subsystems/matching.md). The gateway (``matching.gateway``) reports connections;
``services.sweep`` asks who is gone.
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings

from core.redis import key
from core.scripts import Script

from .pool import now_ms

LIVENESS_SCRIPT = Script(Path(__file__).with_name("liveness.lua"))


def grace_ms() -> int:
    return int(settings.LIMITS["MEET_PARTNER_GRACE_SECONDS"] * 1000)


def live_key() -> str:
    """The users in a match, by the time until which a connection vouches for them."""
    return key("mm", "live")


def conns_key(user_id: int) -> str:
    """A user's Meet connections, by the time until which their process vouches for them."""
    return key("mm", "conns", user_id)


def _args(op: str, now: int | None, *rest: Any) -> list[Any]:
    return [key("mm"), op, now_ms() if now is None else now, grace_ms(), *rest]


async def aconns_refresh(*, conns: Iterable[tuple[int, str]], now: int | None = None) -> None:
    """Vouch for open connections ``(user id, channel name)``, in one script call."""
    flat: list[Any] = []
    for user_id, channel in conns:
        flat += [user_id, channel]
    if flat:
        await LIVENESS_SCRIPT.arun(args=_args("refresh", now, *flat), on=live_key())


async def aconn_leave(*, user_id: int, channel: str, now: int | None = None) -> bool:
    """Forget a closed connection; True if it was the last of a user in a match."""
    return bool(
        await LIVENESS_SCRIPT.arun(args=_args("leave", now, user_id, channel), on=live_key())
    )


def members_watch(*, user_ids: Iterable[int], now: int | None = None) -> None:
    """Start watching just-matched users: gone after the grace unless a connection vouches."""
    LIVENESS_SCRIPT.run(args=_args("watch", now, *user_ids), on=live_key())


def members_gone(*, limit: int, now: int | None = None) -> list[int]:
    """Return (once) up to ``limit`` users in a match whose connections are all gone."""
    return [int(u) for u in LIVENESS_SCRIPT.run(args=_args("gone", now, limit), on=live_key())]
