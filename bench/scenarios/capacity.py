"""Where one Redis server and one PostgreSQL primary stop on this machine (issue #16, item 5).

The capacity plan (docs/deployment.md) divides these ceilings by the per-message and per-user
costs that ``messaging``, ``typical`` and ``connections`` measure (bench/costs.py). Two parts:

- **Redis**: ``redis-benchmark`` against a redis-server of this scenario's own (nothing else
  on it), with the bus's commands: ``PUBLISH`` of an event-sized payload to a channel that
  one ``redis-cli`` subscriber reads (the channel layer's doorbell; a publish with no
  subscriber costs Redis less), and the presence refresh's ``ZADD`` / ``HSET`` / ``SET`` /
  ``EXPIRE`` / ``ZSCORE``. Each unpipelined (one round trip per command) and pipelined by
  ``PIPELINE`` (how channels-redis and the presence refresh send a batch).
- **PostgreSQL**: the message writer's own batch statement (``conversations.writer``: one
  statement per group-commit batch) from ``WRITERS`` connections, as web processes run it:
  sends arrive at an offered rate spread over the writers, and each writer stores, in one
  statement, every send that arrived while its previous statement ran (at most
  ``MESSAGE_BATCH_MAX``, as the writer). The rate goes up
  until the writers fall behind (achieved under ``KEEP_UP`` of the offered rate); each level
  also says whether the statement's p99 stayed under ``STATEMENT_P99_MS``. The PostgreSQL
  backends' CPU per message is read from their processes, and the WAL one message writes
  from ``EXPLAIN (ANALYZE, WAL)`` of a batch (the server's WAL position moves with every
  tenant of a shared server).

Everything it creates is removed, also on failure: its Redis server is stopped, its users,
conversations and messages deleted from the bench database. At most ``WRITERS`` + 1
PostgreSQL connections.
"""

import asyncio
import contextlib
import random
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import psutil
import psycopg
from django.conf import settings
from django.utils import timezone

from bench import common
from switchboard.embedded_redis import RedisServer

WRITERS = 2  # the bench's two web processes, each with its writer connection
CONVERSATIONS = 1000
BODY = "x" * 60  # a chat line
EVENT_PAYLOAD_BYTES = 300  # a message.new event as the channel layer publishes it
PIPELINE = 16
KEEP_UP = 0.95
STATEMENT_P99_MS = 50.0
FULL = {
    "redis_requests": 200_000,
    "pg_rates": [500, 1000, 2000, 3000, 4000, 6000, 8000, 12000],
    "pg_seconds": 6.0,
}
QUICK = {"redis_requests": 20_000, "pg_rates": [500, 2000], "pg_seconds": 2.0}
REDIS_COMMANDS = {
    "publish": ["PUBLISH", "sbch", "x" * EVENT_PAYLOAD_BYTES],
    "zadd": ["ZADD", "sbz", "__rand_int__", "m:__rand_int__"],
    "hset": ["HSET", "sbh:__rand_int__", "f", "v"],
    "set": ["SET", "sbs:__rand_int__", "v", "EX", "60"],
    "expire": ["EXPIRE", "sbs:__rand_int__", "60"],
    "zscore": ["ZSCORE", "sbz", "m:__rand_int__"],
}


# -- Redis ---------------------------------------------------------------------------------
def _redis_benchmark(port: int, command: list[str], requests: int, pipeline: int) -> float:
    """Return the requests per second redis-benchmark measured for one command."""
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", "50", "-n", str(requests),
         "-P", str(pipeline), "-r", "100000", "-q", "--csv", *command],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    for line in out.stdout.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if len(cells) >= 2 and cells[0] != "test":
            return float(cells[1])
    raise RuntimeError(f"no result from redis-benchmark: {out.stdout!r} {out.stderr!r}")


def redis_ceiling(requests: int, log_dir: Path) -> dict:
    """Commands per second one redis-server (one core) runs, per bus command."""
    if shutil.which("redis-benchmark") is None:
        return {"skipped": "redis-benchmark is not installed (make cluster-tools)"}
    server = RedisServer(executable=common.redis_executable(), extra_args=common.BUS_REDIS_ARGS)
    server.start()
    log_dir.mkdir(parents=True, exist_ok=True)
    subscriber = None
    try:
        subscriber = subprocess.Popen(
            ["redis-cli", "-p", str(server.port), "SUBSCRIBE", "sbch"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        proc = psutil.Process(server.proc.pid) if server.proc else None
        rows = []
        for name, command in REDIS_COMMANDS.items():
            for pipeline in (1, PIPELINE):
                cpu0 = proc.cpu_times() if proc else None
                t0 = time.monotonic()
                rate = _redis_benchmark(server.port, command, requests, pipeline)
                seconds = time.monotonic() - t0
                cores = None
                if proc and cpu0:
                    cpu1 = proc.cpu_times()
                    used = cpu1.user + cpu1.system - cpu0.user - cpu0.system
                    cores = round(used / seconds, 2)
                rows.append(
                    {
                        "command": name,
                        "pipeline": pipeline,
                        "per_second": round(rate),
                        "redis_cores": cores,
                        # On a machine shared with the benchmark client (and other work)
                        # Redis seldom gets a whole core: what one core of it would run.
                        "per_redis_core_second": round(rate / cores) if cores else None,
                    }
                )
        return {"requests": requests, "clients": 50, "rows": rows}
    finally:
        if subscriber is not None:
            subscriber.kill()
            subscriber.wait(10)
        server.stop()


# -- PostgreSQL ----------------------------------------------------------------------------
def _fixtures() -> tuple[list[int], list[int], list[tuple[int, int]]]:
    prefix = f"cap{uuid.uuid4().hex[:6]}_"
    users = common.users_create(count=2 * CONVERSATIONS, prefix=prefix)
    ids = [u for u, _ in users]
    pairs = [(ids[2 * i], ids[2 * i + 1]) for i in range(CONVERSATIONS)]
    convs = common.conversations_direct_create(pairs)
    senders = [(cid, a) for cid, (a, _b) in zip(convs, pairs, strict=True)]
    return ids, convs, senders


def _fixtures_drop(user_ids: list[int], conversation_ids: list[int]) -> None:
    from django.contrib.auth import get_user_model

    from conversations.models import Conversation, Message

    Message.objects.filter(conversation_id__in=conversation_ids).delete()
    Conversation.objects.filter(pk__in=conversation_ids).delete()
    get_user_model().objects.filter(pk__in=user_ids).delete()


class _Sends:
    """Sends arriving at ``rate`` per second; ``take()`` returns those due and not taken."""

    def __init__(self, rate: float, senders: list[tuple[int, int]], start: float) -> None:
        self.rate, self.senders, self.start, self.taken = rate, senders, start, 0

    def take(self, now: float, limit: int) -> list:
        from conversations.writer import SendRequest

        due = min(int((now - self.start) * self.rate), limit) - self.taken
        due = min(due, settings.LIMITS["MESSAGE_BATCH_MAX"])  # as the writer's batches
        out = []
        for _ in range(max(due, 0)):
            cid, uid = random.choice(self.senders)
            out.append(SendRequest(uid, cid, BODY, uuid.uuid4().hex))
        self.taken += len(out)
        return out


async def _writer(conn, sends: _Sends, stop_at: float, total: int, stats: dict) -> None:
    from conversations import writer

    sql = writer._batch_sql()
    while time.monotonic() < stop_at:
        batch = sends.take(time.monotonic(), total)
        if not batch:
            await asyncio.sleep(0.001)
            continue
        t0 = time.perf_counter()
        cur = await conn.execute(
            sql, writer._batch_params(batch, list(range(len(batch))), timezone.now())
        )
        rows = await cur.fetchall()
        stats["statement_ms"].append((time.perf_counter() - t0) * 1000)
        stats["batches"] += 1
        stats["stored"] += sum(1 for r in rows if r[1])


async def _open_writers(n: int) -> list:
    conns = []
    for _ in range(n):
        # As the web process' writer connection: autocommit, the generic plan kept.
        conn = await psycopg.AsyncConnection.connect(common.database_url(), autocommit=True)
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute("SET enable_seqscan = off")
        conns.append(conn)
    return conns


def _backend_procs(conns) -> list[psutil.Process]:
    procs = []
    for conn in conns:
        # PostgreSQL on another host: no backend CPU.
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(conn.info.backend_pid))
    return procs


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


async def _pg_level(conns, senders, rate: float, seconds: float) -> dict:
    procs = _backend_procs(conns)
    cpu0 = _cpu(procs)
    start = time.monotonic()
    sends = _Sends(rate, senders, start)
    total = int(rate * seconds)
    stats = {"statement_ms": [], "batches": 0, "stored": 0}
    await asyncio.gather(*(_writer(c, sends, start + seconds, total, stats) for c in conns))
    elapsed = time.monotonic() - start
    cpu = _cpu(procs) - cpu0
    lat = common.latency_summary(stats["statement_ms"])
    stored = stats["stored"]
    return {
        "offered": rate,
        "sent": sends.taken,
        "achieved": round(stored / elapsed, 1),
        "stored": stored,
        "batches": stats["batches"],
        "batch_mean": round(stored / max(stats["batches"], 1), 1),
        "statement_p50_ms": lat["p50"],
        "statement_p99_ms": lat["p99"],
        "pg_cores": round(cpu / elapsed, 3) if procs else None,
        "pg_cpu_ms_per_msg": round(cpu * 1000 / max(stored, 1), 4) if procs else None,
    }


async def _wal_per_message(conn, senders, size: int) -> dict:
    """WAL one batch of ``size`` writes, from ``EXPLAIN (ANALYZE, WAL)``: this statement's
    own, whatever else the server does."""
    from conversations import writer
    from conversations.writer import SendRequest

    batch = [
        SendRequest(uid, cid, BODY, uuid.uuid4().hex) for cid, uid in random.sample(senders, size)
    ]
    params = writer._batch_params(batch, list(range(size)), timezone.now())
    cur = await conn.execute("EXPLAIN (ANALYZE, WAL, FORMAT JSON) " + writer._batch_sql(), params)
    plan = (await cur.fetchone())[0][0]["Plan"]
    wal = plan.get("WAL Bytes", 0)
    return {
        "batch": size,
        "wal_bytes": wal,
        "wal_records": plan.get("WAL Records"),
        # Full-page images: a page's first change after a checkpoint writes the whole page.
        "wal_fpi": plan.get("WAL FPI"),
        "wal_bytes_per_message": round(wal / size, 1),
    }


async def _pg_ceiling(rates: list[int], seconds: float, senders) -> dict:
    conns = await _open_writers(WRITERS)
    try:
        levels = []
        for rate in rates:
            row = await _pg_level(conns, senders, rate, seconds)
            row["kept_up"] = row["achieved"] >= KEEP_UP * rate
            row["p99_held"] = (row["statement_p99_ms"] or 0) < STATEMENT_P99_MS
            levels.append(row)
            print(
                f"  PostgreSQL writer: offered {rate}/s achieved {row['achieved']}/s, "
                f"batch {row['batch_mean']}, statement p99 {row['statement_p99_ms']} ms, "
                f"PostgreSQL {row['pg_cores']} cores",
                flush=True,
            )
            if not row["kept_up"]:
                break
        wal = [await _wal_per_message(conns[0], senders, n) for n in (1, 10, 50)]
    finally:
        for c in conns:
            await c.close()
    held = [r for r in levels if r["kept_up"]]
    held_p99 = [r for r in held if r["p99_held"]]
    return {
        "writers": WRITERS,
        "seconds": seconds,
        "levels": levels,
        "held_rate": held[-1]["offered"] if held else None,
        "held_rate_p99": held_p99[-1]["offered"] if held_p99 else None,
        "best_achieved": max(r["achieved"] for r in levels) if levels else None,
        "wal": wal,
    }


# -- the run -------------------------------------------------------------------------------
def run(*, quick: bool, results_dir: Path) -> dict:
    common.setup(results_dir)
    mode = QUICK if quick else FULL
    redis_part = redis_ceiling(mode["redis_requests"], results_dir / "logs")
    if "rows" in redis_part:
        print(
            common.table(
                redis_part["rows"],
                [("command", "command", ""), ("pipeline", "pipeline", ""),
                 ("per_second", "per second", ",.0f"), ("redis_cores", "redis cores", ".2f"),
                 ("per_redis_core_second", "per Redis core-second", ",.0f")],
            )
        )  # fmt: skip
    users, convs, senders = _fixtures()
    try:
        pg_part = asyncio.run(_pg_ceiling(mode["pg_rates"], mode["pg_seconds"], senders))
    finally:
        _fixtures_drop(users, convs)
    for w in pg_part["wal"]:
        print(
            f"  writer WAL: batch of {w['batch']}: {w['wal_bytes_per_message']} B per message "
            f"({w['wal_records']} records, {w['wal_fpi']} full pages)"
        )
    result = {
        "scenario": "capacity",
        "quick": quick,
        "machine_load": common.machine_load(0.5),
        "redis": redis_part,
        "postgres": pg_part,
        # No target: the ceilings feed the capacity plan (docs/deployment.md).
        "targets": [],
    }
    common.write_json(results_dir / "capacity.json", result)
    _plot(results_dir / "capacity.png", redis_part, pg_part)
    return result


def _plot(path: Path, redis_part: dict, pg_part: dict) -> None:
    levels = pg_part["levels"]
    xs = [r["offered"] for r in levels]
    panels = [
        {
            "ylabel": "messages/s stored",
            "series": {"achieved": (xs, [r["achieved"] for r in levels])},
            "diagonal": True,
        },
        {
            "ylabel": "batch statement ms",
            "series": {
                "p50": (xs, [r["statement_p50_ms"] for r in levels]),
                "p99": (xs, [r["statement_p99_ms"] for r in levels]),
            },
            "hlines": {f"{STATEMENT_P99_MS:.0f} ms": STATEMENT_P99_MS},
        },
    ]
    common.plot(
        path,
        title=f"PostgreSQL: the writer's batch statement from {WRITERS} connections",
        xlabel="offered messages/s",
        panels=panels,
    )


if __name__ == "__main__":
    common.scenario_main(run)
