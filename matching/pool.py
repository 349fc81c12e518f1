"""The Meet pool in Redis: thin Python calls around ``match.lua`` (docs/subsystems/matching.md).

This module owns Meet's key layout on the bus: the pool under ``key("mm")`` (the script's),
each user's current match (``cur_key``) and each open room (``room_key``).

Every pool function takes ``client`` and ``prefix`` so the benchmark and the Redis 6.2 test
can point it at another server; by default it uses the bus and ``key("mm")``. Time is passed
in (``now_ms``) rather than read inside Redis, so tests drive relaxation without sleeping.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import redis
from django.conf import settings

from core.redis import bus, key
from core.scripts import Script

MATCH_SCRIPT = Script(Path(__file__).with_name("match.lua"))

# Score of a block in an avoid set: "until" far beyond any real time.
AVOID_FOREVER_MS = 9e15
AVOID_COMPLETE = "_"  # member present once the set was rebuilt from PostgreSQL
REGION_MODES = {"prefer": "p", "require": "r", "any": "a"}


def cur_key(user_id: int) -> str:
    """The user's current match id, while its room is open (or being recorded)."""
    return key("mm", "cur", user_id)


def room_key(match_id: int) -> str:
    """``"<user a>:<user b>"`` of an open room: the hot path's membership check."""
    return key("mm", "room", match_id)


def signals_key(match_id: int) -> str:
    """A list: the room's recent signalling metadata (``roomlog``; kind, size, time)."""
    return key("mm", "sig", match_id)


def lines_key(match_id: int) -> str:
    """A list: the room's last text lines, kept briefly for a report (``roomlog``)."""
    return key("mm", "lines", match_id)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class PoolConfig:
    """The pool's bounds and timings, in milliseconds (from ``settings.LIMITS``)."""

    ttl_ms: int
    grace_ms: int
    relax_ms: tuple[int, int]
    window: int
    refine: int
    recent_ms: int
    pending_ms: int
    pool_max: int
    avoid_ttl_ms: int
    trend_ttl_ms: int
    trending: bool = True

    @classmethod
    def from_settings(cls, **overrides: Any) -> "PoolConfig":
        limits = settings.LIMITS
        relax = limits["MATCH_RELAX_AFTER_SECONDS"]
        values = {
            "ttl_ms": limits["MATCH_TICKET_TTL_SECONDS"] * 1000,
            "grace_ms": limits["MATCH_TRACE_GRACE_SECONDS"] * 1000,
            "relax_ms": (int(relax[0] * 1000), int(relax[1] * 1000)),
            "window": limits["MATCH_CANDIDATES_PER_LIST"],
            "refine": limits["MATCH_REFINE_CANDIDATES"],
            "recent_ms": limits["MATCH_RECENT_PARTNER_SECONDS"] * 1000,
            # Between the decision and the room being recorded in PostgreSQL: if the web
            # process dies in between, both users may enter again after this.
            "pending_ms": limits["MATCH_PENDING_SECONDS"] * 1000,
            "pool_max": limits["MATCH_POOL_MAX"],
            "avoid_ttl_ms": max(limits["MATCH_RECENT_PARTNER_SECONDS"] * 2, 3600) * 1000,
            "trend_ttl_ms": limits["TRENDING_DAYS_KEPT"] * 86_400_000,
        }
        values.update(overrides)
        return cls(**values)


@dataclass
class Decision:
    """What the script decided for one seeker."""

    status: str  # matched | waiting | busy | full | rebuild | gone
    step: int | None = None
    partner_id: int | None = None
    shared: list[str] = field(default_factory=list)
    partner_channel: str = ""
    channel: str = ""
    cur: str = ""  # busy: the user's cur marker (a match id, or "0" while being recorded)


def trending_key(day_ms: int) -> str:
    """Return the trending sorted set of the UTC day containing ``day_ms``.

    Under ``mm`` (the match script increments it): on the pool's bus server."""
    day = datetime.fromtimestamp(day_ms / 1000, tz=UTC).strftime("%Y%m%d")
    return key("mm", "trend", day)


def _args(op: str, now: int, cfg: PoolConfig, prefix: str, *rest: Any) -> list[Any]:
    return [
        prefix,
        op,
        now,
        cfg.ttl_ms,
        cfg.grace_ms,
        cfg.relax_ms[0],
        cfg.relax_ms[1],
        cfg.window,
        cfg.refine,
        cfg.recent_ms,
        cfg.pending_ms,
        cfg.pool_max,
        cfg.avoid_ttl_ms,
        trending_key(now) if cfg.trending else "",
        cfg.trend_ttl_ms,
        *rest,
    ]


def _decision(raw: Sequence[Any]) -> Decision:
    status = raw[0]
    if status == "matched":
        return Decision(
            status=status,
            partner_id=int(raw[1]),
            shared=[s for s in raw[2].split(",") if s],
            partner_channel=raw[3],
            channel=raw[4],
        )
    if status == "waiting":
        return Decision(status=status, step=int(raw[1]))
    if status == "busy":
        return Decision(status=status, cur=raw[1])
    return Decision(status=status)


def _enter_args(
    user_id: int,
    language: str,
    region: str,
    region_mode: str,
    interests: list[str],
    channel: str,
    decide: bool,
    now: int,
) -> tuple[str, int, str, str, str, str, str, str, str]:
    if region_mode not in REGION_MODES:
        raise ValueError(f"region_mode must be one of {sorted(REGION_MODES)}")
    return (
        "enter",
        now,
        str(user_id),
        language,
        region or "-",
        REGION_MODES[region_mode],
        ",".join(interests),
        channel,
        "1" if decide else "0",
    )


def _setup(
    client: redis.Redis | None, prefix: str | None, config: PoolConfig | None, now: int | None
) -> tuple[redis.Redis, str, PoolConfig, int]:
    return (
        client if client is not None else bus(prefix or key("mm")),
        prefix or key("mm"),
        config or PoolConfig.from_settings(),
        now_ms() if now is None else now,
    )


def pool_enter(
    *,
    user_id: int,
    language: str,
    region: str,
    region_mode: str,
    interests: list[str],
    channel: str = "",
    decide: bool = True,
    now: int | None = None,
    client: redis.Redis | None = None,
    prefix: str | None = None,
    config: PoolConfig | None = None,
) -> Decision:
    """Put (or refresh) the user's one ticket in the pool and, if ``decide``, look for a partner."""
    client, prefix, config, now = _setup(client, prefix, config, now)
    op, now, *rest = _enter_args(
        user_id, language, region, region_mode, interests, channel, decide, now
    )
    raw = MATCH_SCRIPT.run(client=client, args=_args(op, now, config, prefix, *rest))
    return _decision(raw)


def pool_decide(
    *,
    user_id: int,
    now: int | None = None,
    client: redis.Redis | None = None,
    prefix: str | None = None,
    config: PoolConfig | None = None,
) -> Decision:
    """Run the decision again for a waiting user (after relaxation or an avoid-set rebuild)."""
    client, prefix, config, now = _setup(client, prefix, config, now)
    raw = MATCH_SCRIPT.run(client=client, args=_args("decide", now, config, prefix, str(user_id)))
    return _decision(raw)


def pool_leave(
    *,
    user_id: int,
    channel: str = "",
    client: redis.Redis | None = None,
    prefix: str | None = None,
) -> bool:
    """Remove the user's ticket; with ``channel``, only if that connection entered it."""
    client, prefix, config, now = _setup(client, prefix, None, None)
    args = _args("leave", now, config, prefix, str(user_id), channel)
    return bool(MATCH_SCRIPT.run(client=client, args=args))


def cur_release(
    *, user_id: int, value: str, client: redis.Redis | None = None, prefix: str | None = None
) -> bool:
    """Remove the user's cur marker if it still holds ``value`` (its match has ended)."""
    client, prefix, config, now = _setup(client, prefix, None, None)
    args = _args("release", now, config, prefix, str(user_id), value)
    return bool(MATCH_SCRIPT.run(client=client, args=args))


async def apool_leave(*, user_id: int, channel: str = "") -> bool:
    """Async twin of ``pool_leave`` (the gateway's disconnect, in the loop's bus pipeline)."""
    prefix, config, now = key("mm"), PoolConfig.from_settings(), now_ms()
    args = _args("leave", now, config, prefix, str(user_id), channel)
    return bool(await MATCH_SCRIPT.arun(args=args, on=prefix))


def pool_expire(
    *,
    limit: int,
    now: int | None = None,
    client: redis.Redis | None = None,
    prefix: str | None = None,
) -> int:
    """Remove every trace of up to ``limit`` tickets past their TTL; return how many."""
    client, prefix, config, now = _setup(client, prefix, None, now)
    return int(MATCH_SCRIPT.run(client=client, args=_args("expire", now, config, prefix, limit)))


def pool_due(
    *,
    limit: int,
    now: int | None = None,
    client: redis.Redis | None = None,
    prefix: str | None = None,
) -> list[int]:
    """Return up to ``limit`` waiting users whose relaxation step changed since their decision."""
    client, prefix, config, now = _setup(client, prefix, None, now)
    return [
        int(u)
        for u in MATCH_SCRIPT.run(client=client, args=_args("due", now, config, prefix, limit))
    ]


def pool_ticket(
    *, user_id: int, client: redis.Redis | None = None, prefix: str | None = None
) -> dict:
    """Return the user's ticket as stored (empty when not waiting)."""
    client = client if client is not None else bus(prefix or key("mm"))
    # redis-py types a command for both clients (``Awaitable[T] | T``); sync ones return T.
    return cast(dict[str, str], client.hgetall(f"{prefix or key('mm')}:t:{user_id}"))


def pool_size(*, client: redis.Redis | None = None, prefix: str | None = None) -> int:
    """Return how many tickets are in the pool (expired ones until the sweep runs)."""
    client = client if client is not None else bus(prefix or key("mm"))
    return cast(int, client.zcard(f"{prefix or key('mm')}:deadline"))


def avoid_key(user_id: int, prefix: str | None = None) -> str:
    return f"{prefix or key('mm')}:avoid:{user_id}"


def avoid_complete(
    *, user_id: int, client: redis.Redis | None = None, prefix: str | None = None
) -> bool:
    """Return whether the user's avoid set was rebuilt from PostgreSQL and not lost since."""
    client = client if client is not None else bus(avoid_key(user_id, prefix))
    return client.zscore(avoid_key(user_id, prefix), AVOID_COMPLETE) is not None


def avoid_write(
    *,
    user_id: int,
    until_by_user: dict[int, float],
    complete: bool,
    config: PoolConfig | None = None,
    client: redis.Redis | None = None,
    prefix: str | None = None,
) -> None:
    """Add users to avoid (id -> until ms); ``complete`` marks the set as fully rebuilt."""
    client = client if client is not None else bus(avoid_key(user_id, prefix))
    config = config or PoolConfig.from_settings()
    mapping = {str(uid): until for uid, until in until_by_user.items()}
    if complete:
        mapping[AVOID_COMPLETE] = AVOID_FOREVER_MS
    if not mapping:
        return
    name = avoid_key(user_id, prefix)
    pipe = client.pipeline(transaction=True)
    # GT adds new members and never shortens one (a block written meanwhile stays a block).
    pipe.zadd(name, mapping, gt=True)
    pipe.pexpire(name, config.avoid_ttl_ms)
    pipe.execute()


@dataclass(frozen=True)
class PoolStatus:
    """A waiting ticket as the waiting view explains it (``pool_status``)."""

    language: str
    region: str  # "" = none
    region_mode: str  # prefer | require | any
    interests: list[str]
    joined_ms: int
    expires_ms: int
    step: int
    same_region: bool  # the search keeps to the seeker's region at this step
    others_waiting: int  # others in the index the search reads at its widest now
    recent_partners: int  # partners still kept away (MATCH_RECENT_PARTNER_SECONDS)


_MODE_NAMES = {code: name for name, code in REGION_MODES.items()}


def relax_step(*, joined_ms: int, now: int, config: PoolConfig) -> int:
    """The relaxation step of a ticket (as ``step_of`` in match.lua)."""
    waited = now - joined_ms
    return 0 if waited < config.relax_ms[0] else 1 if waited < config.relax_ms[1] else 2


def pool_status(
    *,
    user_id: int,
    now: int | None = None,
    client: redis.Redis | None = None,
    prefix: str | None = None,
    config: PoolConfig | None = None,
) -> PoolStatus | None:
    """Return what the user's ticket searches for and how many could match, or None.

    Constant cost whatever the pool size (no scan on this path, which waiting clients
    poll): one HMGET of the ticket, then the size of one index (ZCARD: the language's list,
    or the language and region's while the search keeps to the region) and the count of
    recent partners in the avoid set (ZCOUNT between now and the block score, exclusive).
    """
    client, prefix, config, now = _setup(client, prefix, config, now)
    fields = ["lang", "reg", "mode", "ints", "joined", "exp"]
    raw = cast(list[str | None], client.hmget(f"{prefix}:t:{user_id}", fields))
    lang, reg, mode, ints, joined, exp = raw
    if lang is None or joined is None or exp is None or int(exp) <= now:
        return None
    step = relax_step(joined_ms=int(joined), now=now, config=config)
    same = reg not in (None, "-") and (mode == "r" or (mode == "p" and step < 2))
    index = f"{prefix}:lr:{lang}:{reg}" if same else f"{prefix}:ll:{lang}"
    pipe = client.pipeline(transaction=False)
    pipe.zcard(index)
    pipe.zcount(avoid_key(user_id, prefix), f"({now}", f"({AVOID_FOREVER_MS:.0f}")
    size, recent = pipe.execute()
    return PoolStatus(
        language=lang,
        region="" if reg in (None, "-") else reg,
        region_mode=_MODE_NAMES.get(mode or "p", "prefer"),
        interests=[s for s in (ints or "").split(",") if s],
        joined_ms=int(joined),
        expires_ms=int(exp),
        step=step,
        same_region=same,
        # The index holds the seeker's own ticket.
        others_waiting=max(int(size) - 1, 0),
        recent_partners=int(recent),
    )
