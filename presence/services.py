"""Presence writes: connections alive in Redis, online / offline announced to contacts.

A user is online while at least one connection, on any server process, is alive: each
connection has an expiry in ``presence:conns:<uid>``, set at admission and pushed forward
by the server process that holds the socket (every TTL / 3, ``presence.gateway``), whether
the client pings or not. A clean close starts a grace period; a killed server's
connections simply stop being refreshed. Either way the Celery beat sweep
(``presence_sweep``) takes the user offline once nothing is alive, and only then is
``offline`` announced. Timing constants and bounds: docs/subsystems/presence.md.
"""

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q

from core.batches import Batches
from core.db import LoopConnection, db, loop_fetch
from core.events import asend_event, send_event, user_group
from core.loop import per_loop
from core.scripts import Script
from profiles.models import Profile

from . import selectors
from .selectors import conns_key, seen_key, seen_write_key, timestamp_iso, users_key

logger = logging.getLogger(__name__)

_LUA = Path(__file__).resolve().parent / "lua"
ADMIT = Script(_LUA / "admit.lua")
TOUCH = Script(_LUA / "touch.lua")
REFRESH = Script(_LUA / "refresh.lua")
LEAVE = Script(_LUA / "leave.lua")
SWEEP = Script(_LUA / "sweep.lua")


def _touch_args(user_id: int, conn_id: str, now: float) -> dict:
    return {
        "keys": [
            conns_key(user_id),
            users_key(),
            seen_key(),
            seen_write_key(user_id),
        ],
        "args": [
            user_id,
            conn_id,
            repr(now),
            settings.LIMITS["PRESENCE_TTL_SECONDS"],
            settings.LIMITS["PRESENCE_LAST_SEEN_WRITE_SECONDS"],
        ],
    }


def _leave_args(user_id: int, conn_id: str, now: float) -> dict:
    return {
        "keys": [conns_key(user_id), users_key(), seen_key()],
        "args": [user_id, conn_id, repr(now), settings.LIMITS["PRESENCE_OFFLINE_GRACE_SECONDS"]],
    }


async def apresence_admit(*, user_id: int, conn_id: str, now: float | None = None) -> bool:
    """Register a new connection unless the user has ``WS_CONNECTIONS_PER_USER`` alive;
    return whether it was admitted.

    Count, registration and the touch (``apresence_touch``: online, last activity) are one
    script call, so the bound holds under racing connects on every process. The touch's
    follow-ups (announce online, ``Profile.last_seen``) are done here too: admission is the
    last admit hook, so an admitted socket opens.
    """
    now = time.time() if now is None else now
    admitted, announce, write = await ADMIT.arun(
        keys=[conns_key(user_id), users_key(), seen_key(), seen_write_key(user_id)],
        args=[
            user_id,
            conn_id,
            repr(now),
            settings.LIMITS["PRESENCE_TTL_SECONDS"],
            settings.LIMITS["WS_CONNECTIONS_PER_USER"],
            settings.LIMITS["PRESENCE_LAST_SEEN_WRITE_SECONDS"],
        ],
    )
    if admitted:
        await _touched(user_id, now, announce=bool(announce), write=bool(write))
    return bool(admitted)


async def _touched(user_id: int, now: float, *, announce: bool, write: bool) -> None:
    if write:
        await alast_seen_write(user_id=user_id, at=now)
    if announce:
        await apresence_announce(user_id=user_id, online=True, last_seen=now)


def presence_touch(*, user_id: int, conn_id: str, now: float | None = None) -> bool:
    """Keep a connection alive; announce the user online if they were not. Return that."""
    now = time.time() if now is None else now
    announce, write = TOUCH.run(**_touch_args(user_id, conn_id, now))
    if write:
        last_seen_write(user_id=user_id, at=now)
    if announce:
        presence_announce(user_id=user_id, online=True, last_seen=now)
    return bool(announce)


async def apresence_touch(*, user_id: int, conn_id: str, now: float | None = None) -> bool:
    """Async twin of ``presence_touch`` (a connect, and each process' refresh of its sockets)."""
    now = time.time() if now is None else now
    announce, write = await TOUCH.arun(**_touch_args(user_id, conn_id, now))
    await _touched(user_id, now, announce=bool(announce), write=bool(write))
    return bool(announce)


async def apresence_refresh(*, conns: list[tuple[int, str]], now: float | None = None) -> None:
    """Keep many connections ``(user id, conn id)`` alive at once (a process' refresh round).

    One script call for them all; users found offline (Redis lost them) are announced
    online again, and due ``Profile.last_seen`` writes are one statement.
    """
    if not conns:
        return
    now = time.time() if now is None else now
    flat: list[object] = []
    for user_id, conn_id in conns:
        flat += [user_id, conn_id]
    announce, write = await REFRESH.arun(
        keys=[users_key(), seen_key()],
        args=[
            repr(now),
            settings.LIMITS["PRESENCE_TTL_SECONDS"],
            settings.LIMITS["PRESENCE_LAST_SEEN_WRITE_SECONDS"],
            conns_key(""),
            seen_write_key(""),
            *flat,
        ],
    )
    if write:
        await db(last_seen_write_many)(user_ids=[int(u) for u in write], at=now)
    for uid in announce:
        await apresence_announce(user_id=int(uid), online=True, last_seen=now)


def presence_leave(*, user_id: int, conn_id: str, now: float | None = None) -> int:
    """Forget a closed connection; return how many of the user's connections remain."""
    now = time.time() if now is None else now
    return LEAVE.run(**_leave_args(user_id, conn_id, now))


async def apresence_leave(*, user_id: int, conn_id: str, now: float | None = None) -> int:
    """Async twin of ``presence_leave`` (the consumer's disconnect)."""
    now = time.time() if now is None else now
    return await LEAVE.arun(**_leave_args(user_id, conn_id, now))


def presence_announce(*, user_id: int, online: bool, last_seen: float) -> int:
    """Push ``presence`` to the user's contacts who are online; return how many got it.

    One event per contact however many conversations they share (coalesced); offline
    contacts are skipped (they ask with ``presence.query`` when they come back).
    """
    contacts = selectors.contact_ids(user_id=user_id)
    targets = sorted(selectors.online_ids(user_ids=contacts))
    if targets:
        send_event(
            event="presence",
            data={"user_id": user_id, "online": online, "last_seen": timestamp_iso(last_seen)},
            groups=[user_group(uid) for uid in targets],
        )
    return len(targets)


async def apresence_announce(*, user_id: int, online: bool, last_seen: float) -> int:
    """``presence_announce`` from the event loop (a socket's first connection): its reads
    and the push without a thread hop."""
    contacts = await selectors.acontact_ids(user_id=user_id)
    targets = sorted(await selectors.aonline_ids(user_ids=contacts))
    if targets:
        await asend_event(
            event="presence",
            data={"user_id": user_id, "online": online, "last_seen": timestamp_iso(last_seen)},
            groups=[user_group(uid) for uid in targets],
        )
    return len(targets)


async def alast_seen_write(*, user_id: int, at: float) -> None:
    """``last_seen_write`` from the event loop: one statement for every socket of this
    loop opening at the same moment (``_last_seen_writes_new``), when their profiles exist."""
    if not LoopConnection.available():
        await db(last_seen_write)(user_id=user_id, at=at)
        return
    await _last_seen_writes().add([(user_id, at)])


def _last_seen_writes_new() -> Batches[tuple[int, float]]:
    """``Profile.last_seen`` writes of one event loop, stored in batches (``Batches``): the
    writes queued while one batch is stored are the next, one statement and one commit for
    all (a commit each was a WAL flush per opening socket)."""

    async def store(writes: list[tuple[int, float]]) -> None:
        latest: dict[int, float] = {}
        for user_id, at in writes:
            latest[user_id] = max(at, latest.get(user_id, at))
        await _last_seen_store(latest)

    return Batches(store)


_last_seen_writes = per_loop(_last_seen_writes_new)


async def _last_seen_store(batch: dict[int, float]) -> None:
    """One statement for the users whose profile exists; the ORM for the others (none yet,
    or already at or past ``at``)."""
    table = Profile._meta.db_table
    uids = list(batch)
    rows = await loop_fetch(
        f"UPDATE {table} p SET last_seen = v.at "
        f"FROM unnest(%(uids)s::bigint[], %(ats)s::timestamptz[]) AS v(uid, at) "
        f"WHERE p.user_id = v.uid AND (p.last_seen IS NULL OR p.last_seen < v.at) "
        f"RETURNING p.user_id",
        {"uids": uids, "ats": [datetime.fromtimestamp(batch[u], UTC) for u in uids]},
    )
    stored = {row[0] for row in rows}
    for uid in uids:
        if uid not in stored:
            await db(last_seen_write)(user_id=uid, at=batch[uid])


def last_seen_write(*, user_id: int, at: float) -> None:
    """Store ``Profile.last_seen`` (only ever forward)."""
    when = datetime.fromtimestamp(at, UTC)
    newer = Q(last_seen__isnull=True) | Q(last_seen__lt=when)
    if Profile.objects.filter(user_id=user_id).filter(newer).update(last_seen=when):
        return
    if Profile.objects.filter(user_id=user_id).exists():
        return  # already at or past ``when``
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is not None:  # profiles are created lazily (Profile.objects.ensure)
        Profile.objects.ensure(user=user)
        Profile.objects.filter(user_id=user_id).filter(newer).update(last_seen=when)


def last_seen_write_many(*, user_ids: list[int], at: float) -> None:
    """Store ``Profile.last_seen`` of several users at once (only ever forward); users
    without a profile yet get one as in ``last_seen_write``."""
    when = datetime.fromtimestamp(at, UTC)
    newer = Q(last_seen__isnull=True) | Q(last_seen__lt=when)
    Profile.objects.filter(user_id__in=user_ids).filter(newer).update(last_seen=when)
    have = set(Profile.objects.filter(user_id__in=user_ids).values_list("user_id", flat=True))
    for uid in user_ids:
        if uid not in have:
            last_seen_write(user_id=uid, at=at)


def presence_sweep(*, now: float | None = None) -> list[int]:
    """Take offline every user with no live connection past their deadline; announce it.

    Idempotent: a user is taken offline inside one atomic script, so a second sweep (or a
    retry) finds nothing to do. Returns the users taken offline.
    """
    now = time.time() if now is None else now
    batch = settings.LIMITS["PRESENCE_SWEEP_BATCH"]
    prefix = conns_key("")
    gone: list[int] = []
    while True:
        flat = SWEEP.run(keys=[users_key(), seen_key()], args=[repr(now), batch, prefix])
        pairs = list(zip(flat[::2], flat[1::2], strict=True))
        for raw_uid, raw_seen in pairs:
            uid = int(raw_uid)
            seen = float(raw_seen) if raw_seen else now
            try:
                last_seen_write(user_id=uid, at=seen)
                presence_announce(user_id=uid, online=False, last_seen=seen)
            except Exception:  # one user's failure must not strand the rest of the batch
                logger.exception("user=%s offline announce failed", uid)
            gone.append(uid)
        if len(pairs) < batch:
            return gone
