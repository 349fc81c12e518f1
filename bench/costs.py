"""What the measured work cost: web CPU, bus Redis commands and PostgreSQL writes (issue #16).

``CostMeter(procs).start() ... .stop()`` brackets a scenario's measured window and returns
the deltas over it:

- **web CPU**: user + system seconds of the given server processes (psutil);
- **bus Redis**: ``INFO commandstats`` (calls and server-side microseconds per command) and
  ``INFO cpu`` (the server's own CPU) of the bench's bus Redis, which the bench starts for
  itself (``common.bus_redis``) so no other tenant's commands are counted. The meter's own
  ``INFO`` calls are left out;
- **PostgreSQL**: ``pg_stat_database`` of the bench database (transactions committed, rows
  inserted / updated / deleted) and ``pg_stat_user_tables`` (rows written per table), plus
  the WAL written (``pg_current_wal_lsn()`` difference). WAL is one stream for the whole
  server, so on a shared server it counts other tenants too (``wal_bytes_server``); the
  ``capacity`` scenario measures the message writer's own WAL with ``EXPLAIN (ANALYZE, WAL)``.

PostgreSQL publishes a backend's counters when the backend goes idle, at most once a second;
a backend flushed less than a second before it went idle holds them for up to 10 s
(``PGSTAT_IDLE_INTERVAL``). ``end()`` takes the CPU and Redis figures at the window's end;
``result()`` reads PostgreSQL's once every backend idle since then has published
(``PG_FLUSH_SECONDS`` after the end; a scenario may do its checks meanwhile). The meter's
own reads are taken out of the commits; the read-only transactions of the scenario's own
checks in that time, if any, are not (a few, against thousands of batches). For the same
reason a window that follows other work starts with ``start(flushed=True)``.

``per(costs, n)`` divides the deltas by a count: messages, or connected users times seconds.
"""

import time
from collections.abc import Sequence

import psutil
import psycopg
import redis

from bench import common

# PGSTAT_IDLE_INTERVAL (10 s) and a margin: see the module docstring.
PG_FLUSH_SECONDS = 10.5
TOP_COMMANDS = 12

_PG_SQL = """
    SELECT d.xact_commit, d.xact_rollback, d.tup_inserted, d.tup_updated, d.tup_deleted,
           pg_current_wal_lsn()::text,
           (SELECT coalesce(json_object_agg(relname, json_build_array(n_tup_ins, n_tup_upd,
                                                                       n_tup_del)), '{}')
            FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0)
    FROM pg_stat_database d WHERE d.datname = current_database()
"""


def _cpu_seconds(p: psutil.Process) -> float:
    try:
        t = p.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return 0.0


def redis_snapshot(client: redis.Redis) -> tuple[dict[str, tuple[int, int]], float]:
    """Return ``({command: (calls, usec)}, server cpu seconds)`` of a Redis server."""
    stats = client.info("commandstats")
    calls = {
        key.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
        for key, v in stats.items()
        if key.startswith("cmdstat_")
    }
    cpu = client.info("cpu")
    return calls, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def redis_delta(
    before: tuple[dict[str, tuple[int, int]], float],
    after: tuple[dict[str, tuple[int, int]], float],
) -> dict:
    """Return the commands run between two ``redis_snapshot`` s (``INFO`` left out)."""
    calls0, cpu0 = before
    calls1, cpu1 = after
    by_command = {}
    usec = 0
    for name, (n, us) in calls1.items():
        if name == "info":
            continue
        n0, us0 = calls0.get(name, (0, 0))
        if n > n0:
            by_command[name] = n - n0
            usec += us - us0
    ranked = dict(sorted(by_command.items(), key=lambda kv: -kv[1]))
    return {
        "commands": sum(by_command.values()),
        "usec": usec,
        "cpu_seconds": round(cpu1 - cpu0, 4),
        "by_command": ranked,
    }


def lsn_bytes(lsn: str) -> int:
    """``'16/B374D848'`` -> its byte position in the WAL."""
    hi, lo = lsn.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


class CostMeter:
    """Web CPU, bus Redis commands and PostgreSQL writes between ``start()`` and ``stop()``."""

    def __init__(
        self,
        procs: Sequence[psutil.Process],
        *,
        redis_url: str | None = None,
        database_url: str | None = None,
        pg_flush_seconds: float = PG_FLUSH_SECONDS,
    ) -> None:
        if redis_url is None or database_url is None:
            env = common.bench_env()
            redis_url = redis_url or env["REDIS_URL"]
            database_url = database_url or env["DATABASE_URL"]
        self.procs = list(procs)
        self.redis = redis.Redis.from_url(redis_url)
        self.database_url = database_url
        self.reads = 0
        self.pg_flush_seconds = pg_flush_seconds

    def _pg(self) -> tuple:
        """Read the counters; the meter's own earlier reads are taken out of the commits.

        (Each read is a transaction of the bench database; a fresh connection's counters are
        published when it closes, so they are never held back like an idle backend's.)
        """
        earlier, self.reads = self.reads, self.reads + 1
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute(_PG_SQL).fetchone()
        assert row is not None
        return (row[0] - earlier, *row[1:])

    def start(self, *, flushed: bool = False) -> "CostMeter":
        """Begin the window; ``flushed``: first wait until the counters of what ran just
        before (the clients' connecting, say) are published, so they are not the window's."""
        if flushed:
            time.sleep(self.pg_flush_seconds)
        self.pg0 = self._pg()
        self.t0 = time.monotonic()
        self.cpu0 = [_cpu_seconds(p) for p in self.procs]
        self.redis0 = redis_snapshot(self.redis)
        return self

    def end(self) -> "CostMeter":
        """Take the CPU and Redis figures: the window ends here."""
        self.t1 = time.monotonic()
        self.seconds = max(self.t1 - self.t0, 1e-6)
        self.cpu = sum(_cpu_seconds(p) - c for p, c in zip(self.procs, self.cpu0, strict=True))
        self.bus = redis_delta(self.redis0, redis_snapshot(self.redis))
        self.redis.close()
        return self

    def result(self) -> dict:
        """Return the window's deltas, PostgreSQL's once they are published."""
        wait = self.t1 + self.pg_flush_seconds - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        pg0, pg1 = self.pg0, self._pg()
        tables0 = pg0[6] or {}
        tables = {}
        for name, (ins, upd, dele) in (pg1[6] or {}).items():
            i0, u0, d0 = tables0.get(name, (0, 0, 0))
            if (ins - i0) or (upd - u0) or (dele - d0):
                tables[name] = {"inserted": ins - i0, "updated": upd - u0, "deleted": dele - d0}
        return {
            "seconds": round(self.seconds, 3),
            "web_cpu_seconds": round(self.cpu, 4),
            "redis": self.bus,
            "postgres": {
                "commits": pg1[0] - pg0[0],
                "rollbacks": pg1[1] - pg0[1],
                "rows_inserted": pg1[2] - pg0[2],
                "rows_updated": pg1[3] - pg0[3],
                "rows_deleted": pg1[4] - pg0[4],
                "wal_bytes_server": lsn_bytes(pg1[5]) - lsn_bytes(pg0[5]),
                "tables": tables,
            },
        }

    def stop(self) -> dict:
        """``end()`` then ``result()``."""
        return self.end().result()


def per(costs: dict, n: float) -> dict:
    """Divide a ``CostMeter.stop()`` result by ``n`` (messages, or users times seconds)."""
    n = max(n, 1e-9)
    pg = costs["postgres"]
    bus = costs["redis"]
    return {
        "web_cpu_ms": round(costs["web_cpu_seconds"] * 1000 / n, 4),
        "redis_commands": round(bus["commands"] / n, 3),
        "redis_usec": round(bus["usec"] / n, 2),
        "redis_by_command": {
            k: round(v / n, 3) for k, v in list(bus["by_command"].items())[:TOP_COMMANDS]
        },
        "pg_commits": round(pg["commits"] / n, 3),
        "pg_rows_inserted": round(pg["rows_inserted"] / n, 3),
        "pg_rows_updated": round(pg["rows_updated"] / n, 3),
        "wal_bytes_server": round(pg["wal_bytes_server"] / n, 1),
    }


def summary(costs: dict, *, messages: int | None = None, user_seconds: float | None = None):
    """Return the raw deltas with their per-message and / or per-user-second quotients."""
    out = {"window": costs}
    if messages:
        out["per_message"] = per(costs, messages)
    if user_seconds:
        out["per_user_second"] = per(costs, user_seconds)
    return out


def marginal(window: dict, idle: dict, *, users: int, messages: int) -> dict:
    """What one message adds: a loaded window's deltas less what its connected users cost
    idle (``idle``: a ``per()`` result per user-second), per message."""
    user_seconds = users * window["seconds"]
    total = per(window, 1)
    out = {
        key: round((total[key] - idle[key] * user_seconds) / max(messages, 1), 4)
        for key in (
            "web_cpu_ms",
            "redis_commands",
            "redis_usec",
            "pg_commits",
            "pg_rows_inserted",
            "pg_rows_updated",
        )
    }
    by_command = {}
    for name, n in window["redis"]["by_command"].items():
        left = n - idle["redis_by_command"].get(name, 0) * user_seconds
        if left > 0.01 * max(messages, 1):
            by_command[name] = round(left / max(messages, 1), 3)
    out["redis_by_command"] = dict(sorted(by_command.items(), key=lambda kv: -kv[1]))
    out["wal_bytes_server"] = None  # the server's WAL counts other tenants: no difference
    return out


def report(title: str, unit: dict) -> str:
    """One printed line of a ``per()`` result."""
    top = ", ".join(f"{k} {v:g}" for k, v in list(unit["redis_by_command"].items())[:5])
    return (
        f"  cost {title}: web CPU {unit['web_cpu_ms']:.3f} ms; bus Redis "
        f"{unit['redis_commands']:g} commands ({top}), {unit['redis_usec']:g} µs; PostgreSQL "
        f"{unit['pg_commits']:g} commits, {unit['pg_rows_inserted']:g} rows inserted, "
        f"{unit['pg_rows_updated']:g} updated"
        + (
            f", WAL {unit['wal_bytes_server']:g} B (server-wide)"
            if unit.get("wal_bytes_server") is not None
            else ""
        )
    )
