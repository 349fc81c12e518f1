"""Connections: how many authenticated idle WebSockets two server processes hold (issue #3).

Connections are opened in levels (5k, 10k, 20k, 30k; quick: 2k, 5k), each level adding to
the last, dealt alternately to the two servers from several generator processes (one
process may hold at most 20,000 files here). Every client authenticates with the
``Authorization: Token`` header, waits for ``hello`` and sends ``sync``, like a real client;
users come in pairs sharing a direct conversation, so each connection also holds its
channel-layer group subscriptions. Clients offer permessage-deflate, as browsers do.

Per level: time to open the level's new connections (and open latency per connection),
server RSS per connection ((RSS now - RSS before the first level) / connections held),
server CPU while the connections sit idle (uvicorn's keep-alive pings every 20 s
included), and whether every connection is still open afterwards.

Then the same generators open the first level's count on the bare relay
(``bench/baseline_relay.py``, two processes): opening with nothing of Switchboard behind the
handshake, on this machine, in this run.

Targets: 30,000 held, at most 40 KB of server memory per connection; the first level opened
at >= 500 per second over the two processes (or, if the relay of the run cannot, at the
relay's rate).
"""

import asyncio
import contextlib
import os
import time
from pathlib import Path

import psutil

from bench import common, costs
from switchboard_client import Connection

FULL = {"levels": [5000, 10000, 20000, 30000], "generators": 4, "idle_seconds": 10.0}
# Quick: the whole quick suite must finish in under 3 minutes.
QUICK = {"levels": [600], "generators": 2, "idle_seconds": 2.0}
TARGET_CONNECTIONS = 30000
TARGET_KB_PER_CONNECTION = 40.0
TARGET_OPEN_RATE = 500  # per second, over two processes
OPEN_CONCURRENCY = 100  # handshakes in flight per generator process
WARMUP_CONNECTIONS = 100
SETTLE_SECONDS = 2.0
# "deflate": offer permessage-deflate as browsers do; "none" to measure without it.
CLIENT_COMPRESSION = None if os.environ.get("BENCH_WS_COMPRESSION") == "none" else "deflate"


# ---------------------------------------------------------------------------
# Load generator (runs in its own process)
# ---------------------------------------------------------------------------
class Holder:
    def __init__(self):
        self.sockets = []
        self.drains: list[asyncio.Task] = []
        self.failures: list[str] = []

    async def _open(self, uid, token, url, cids, sem, times):
        async with sem:
            t0 = time.monotonic()
            try:
                # The Python client's one-socket layer: token header, then hello (the
                # server pings; the websockets library answers).
                conn = await Connection.open(
                    url,
                    token=token,
                    compression=CLIENT_COMPRESSION,
                    open_timeout=240,
                    close_timeout=2,
                )
                times.append((time.monotonic() - t0) * 1000)
                await conn.send(
                    {
                        "type": "sync",
                        "ref": "s",
                        "data": {"conversations": {str(c): 0 for c in cids}},
                    }
                )
            except Exception as exc:
                self.failures.append(repr(exc)[:200])
                return
            self.sockets.append(conn)
            self.drains.append(asyncio.create_task(self._drain(conn)))

    @staticmethod
    async def _drain(conn):
        # Presence and replies arrive now and then; read them so nothing backs up.
        try:
            async for _ in conn:
                pass
        except Exception:
            pass

    async def open(self, specs: list[tuple], concurrency: int) -> dict:
        sem = asyncio.Semaphore(concurrency)
        times: list[float] = []
        failed_before = len(self.failures)
        start = time.monotonic()
        await asyncio.gather(*(self._open(*s, sem, times) for s in specs))
        return {
            "opened": len(times),
            "failed": len(self.failures) - failed_before,
            "failures": self.failures[failed_before:][:5],
            "seconds": time.monotonic() - start,
            "open_ms": times,
            "rss": psutil.Process().memory_info().rss,
        }

    async def check(self) -> dict:
        return {"open": sum(1 for conn in self.sockets if conn.is_open)}

    async def close(self) -> dict:
        for t in self.drains:
            t.cancel()
        # Close in batches: 15,000 closing handshakes at once would only time out.
        for i in range(0, len(self.sockets), 500):
            await asyncio.gather(
                *(conn.close() for conn in self.sockets[i : i + 500]), return_exceptions=True
            )
        n = len(self.sockets)
        self.sockets, self.drains = [], []
        return {"closed": n}


def holder_main(conn) -> None:
    holder = Holder()
    common.worker_loop(conn, {"open": holder.open, "check": holder.check, "close": holder.close})


# ---------------------------------------------------------------------------
# The scenario (runs in the bench process)
# ---------------------------------------------------------------------------
def _fixtures(count: int, servers: int) -> list[tuple]:
    """Users in pairs sharing a direct conversation; return (uid, token, server, [cid])."""
    users = common.users_create(count=count, prefix="conn")
    ids = [u for u, _ in users]
    pairs = [(ids[i], ids[i + 1]) for i in range(0, count - 1, 2)]
    convs = common.conversations_direct_create(pairs)
    conv_of = {uid: cid for cid, pair in zip(convs, pairs, strict=True) for uid in pair}
    return [
        (uid, token, i % servers, [conv_of[uid]] if uid in conv_of else [])
        for i, (uid, token) in enumerate(users)
    ]


def _server_fds(servers) -> int:
    total = 0
    for s in servers:
        with contextlib.suppress(psutil.Error):
            total += s.process.num_fds()
    return total


def _relay_opening(*, workers_n: int, specs: list[tuple], results_dir: Path) -> dict:
    """Open as many sockets on the bare relay (``bench/baseline_relay.py``) with the same
    generators and concurrency: what opening costs on this machine with nothing of
    Switchboard (no auth, no database, no presence) behind the handshake."""
    from bench.scenarios.baseline import _app_servers

    servers = _app_servers("bench.baseline_relay:app", "relay-open", results_dir)
    try:
        urls = [s.ws_url for s in servers]
        plan = [
            (uid, "-", f"{urls[srv]}?uid={uid}&c={cids[0] if cids else 0}", cids)
            for uid, _tok, srv, cids in specs
        ]
        with common.Workers(holder_main, [() for _ in range(workers_n)]) as workers:
            base_rss = [s.rss() for s in servers]
            bar = common.progress(len(plan), "relay connections", unit="conn")
            t0 = time.monotonic()
            replies = workers.ask(
                None,
                per_worker=[("open", c, OPEN_CONCURRENCY) for c in common.split(plan, workers_n)],
                timeout=900,
            )
            seconds = time.monotonic() - t0
            bar.update(len(plan))
            bar.close()
            time.sleep(SETTLE_SECONDS)
            rss = [s.rss() for s in servers]
            held = sum(r["open"] for r in workers.ask(("check",), timeout=120))
            workers.ask(("close",), timeout=600)
    finally:
        for s in servers:
            s.stop()
    open_ms = common.latency_summary([x for r in replies for x in r["open_ms"]])
    return {
        "connections": len(plan),
        "opened": sum(r["opened"] for r in replies),
        "failed": sum(r["failed"] for r in replies),
        "held": held,
        "open_seconds": round(seconds, 2),
        "open_rate": round(len(plan) / seconds, 1),
        "open_p50_ms": open_ms["p50"],
        "open_p99_ms": open_ms["p99"],
        "kb_per_connection": round((sum(rss) - sum(base_rss)) / max(held, 1) / 1024, 1),
    }


def run(*, quick: bool, results_dir: Path) -> dict:
    common.setup(results_dir)
    mode = QUICK if quick else FULL
    levels = mode["levels"]
    n_gen = mode["generators"]
    specs = _fixtures(levels[-1] + WARMUP_CONNECTIONS, 2)
    warmup, specs = specs[:WARMUP_CONNECTIONS], specs[WARMUP_CONNECTIONS:]
    rows = []
    with common.servers(2, results_dir=results_dir) as servers:
        urls = [s.ws_url for s in servers]

        def plan(chunk):
            return [(uid, tok, urls[srv], cids) for uid, tok, srv, cids in chunk]

        with common.Workers(holder_main, [() for _ in range(n_gen)]) as workers:
            # Warm-up: first connections import handler modules, open database connections
            # and thread pools; none of that is per-connection memory.
            workers.ask(
                None,
                per_worker=[
                    ("open", plan(c), OPEN_CONCURRENCY) for c in common.split(warmup, n_gen)
                ],
                timeout=300,
            )
            workers.ask(("close",), timeout=300)
            time.sleep(SETTLE_SECONDS)
            base_rss = [s.rss() for s in servers]
            base_fds = _server_fds(servers)
            held = 0
            for level in levels:
                new = specs[held:level]
                meter = common.CpuMeter([s.process for s in servers]).start()
                bar = common.progress(len(new), f"connections -> {level}", unit="conn")
                t0 = time.monotonic()
                replies = workers.ask(
                    None,
                    per_worker=[
                        ("open", plan(c), OPEN_CONCURRENCY) for c in common.split(new, n_gen)
                    ],
                    timeout=900,
                    on_wait=lambda bar=bar, t0=t0: bar.set_postfix_str(
                        f"{time.monotonic() - t0:.0f} s"
                    ),
                )
                bar.update(len(new))
                bar.close()
                open_seconds = time.monotonic() - t0
                open_cpu = meter.stop()
                held = level
                time.sleep(SETTLE_SECONDS)
                rss = [s.rss() for s in servers]
                # The opening's PostgreSQL counters published first: not the idle window's.
                idle_cost = costs.CostMeter([s.process for s in servers]).start(flushed=True)
                idle = common.CpuMeter([s.process for s in servers]).start()
                common.sleep_with_progress(mode["idle_seconds"], f"idle at {level}")
                idle_cpu = idle.stop()
                idle_costs = idle_cost.stop()
                still_open = sum(r["open"] for r in workers.ask(("check",), timeout=120))
                opened = sum(r["opened"] for r in replies)
                failed = sum(r["failed"] for r in replies)
                open_ms = common.latency_summary([x for r in replies for x in r["open_ms"]])
                delta = sum(rss) - sum(base_rss)
                row = {
                    "connections": level,
                    "opened": opened,
                    "failed": failed,
                    "failures": [f for r in replies for f in r["failures"]][:5],
                    "held": still_open,
                    "server_fds": _server_fds(servers) - base_fds,
                    "open_seconds": round(open_seconds, 2),
                    "open_rate": round(len(new) / open_seconds, 1),
                    "open_p50_ms": open_ms["p50"],
                    "open_p99_ms": open_ms["p99"],
                    "open_server_cores": open_cpu["total"],
                    "rss_mb": [round(r / 2**20, 1) for r in rss],
                    "kb_per_connection": round(delta / max(still_open, 1) / 1024, 1),
                    "idle_server_cores": idle_cpu["total"],
                    "idle_machine_cores": idle_cpu["machine"],
                    "generator_rss_mb": round(sum(r["rss"] for r in replies) / 2**20, 1),
                    # Sockets that send nothing (no app ping): keep-alive and presence refresh only.
                    "idle_costs": costs.summary(
                        idle_costs, user_seconds=max(still_open, 1) * idle_costs["seconds"]
                    ),
                }
                rows.append(row)
                print(
                    f"  {level}: held {still_open}, opened in {open_seconds:.1f} s, "
                    f"{row['kb_per_connection']} KB/conn, idle {idle_cpu['total']:.3f} cores",
                    flush=True,
                )
                print(
                    costs.report(
                        f"per held connection and second at {level}",
                        row["idle_costs"]["per_user_second"],
                    ),
                    flush=True,
                )
                if failed > 0.05 * len(new):
                    print(f"  stopping: {failed} of {len(new)} connections failed")
                    break
            workers.ask(("close",), timeout=600)
    # Switchboard's servers are stopped first: their clean-up of 30,000 closed sockets must
    # not share the machine with the relay's opening.
    relay = _relay_opening(workers_n=n_gen, specs=specs[: levels[0]], results_dir=results_dir)
    print(common.table(rows, COLUMNS))
    print(
        f"  bare relay, same generators: {relay['opened']} opened in {relay['open_seconds']} s "
        f"= {relay['open_rate']}/s (open p99 {relay['open_p99_ms']} ms), "
        f"{relay['kb_per_connection']} KB/conn"
    )
    top = rows[-1]
    first = rows[0]
    # Opening is judged on the first level (connections opened into idle servers), against
    # the bare relay opening as many with the same generators in the same run.
    open_want = min(TARGET_OPEN_RATE, relay["open_rate"])
    # The quick run's top level is 5,000: it checks that every connection opened is held.
    want = levels[-1] if quick else TARGET_CONNECTIONS
    targets = [
        {
            "name": "connections held" + (" (quick run: its top level)" if quick else ""),
            "target": want,
            "measured": top["held"],
            "met": top["held"] >= want,
        },
        {
            "name": "server memory per connection (KB)",
            "target": f"<= {TARGET_KB_PER_CONNECTION:.0f}",
            "measured": top["kb_per_connection"],
            "met": top["kb_per_connection"] <= TARGET_KB_PER_CONNECTION,
        },
        {
            "name": f"opened/s over two processes ({first['connections']} connections; "
            f"the bare relay of this run: {relay['open_rate']}/s)",
            "target": f">= {TARGET_OPEN_RATE}"
            + ("" if relay["open_rate"] >= TARGET_OPEN_RATE else " (relay's own rate)"),
            "measured": first["open_rate"],
            "met": first["open_rate"] >= open_want,
        },
    ]
    result = {
        "scenario": "connections",
        "quick": quick,
        "generators": n_gen,
        "idle_seconds": mode["idle_seconds"],
        "client_compression": CLIENT_COMPRESSION,
        "baseline_rss_mb": [round(r / 2**20, 1) for r in base_rss],
        "levels": rows,
        "relay": relay,
        "targets": targets,
        "cost_summary": {
            f"idle at {r['connections']}, per connection and second": r["idle_costs"][
                "per_user_second"
            ]
            for r in rows
        },
        "machine_load": common.machine_load(0.5),
    }
    common.write_json(results_dir / "connections.json", result)
    _plot(results_dir / "connections.png", rows)
    for t in targets:
        print(f"  target {t['name']}: {t['measured']} -> {'met' if t['met'] else 'MISSED'}")
    return result


COLUMNS = [
    ("connections", "connections", ""),
    ("held", "held", ""),
    ("failed", "failed", ""),
    ("open_seconds", "open s", ".1f"),
    ("open_rate", "opened/s", ".0f"),
    ("open_p99_ms", "open p99 ms", ".0f"),
    ("kb_per_connection", "KB/conn", ".1f"),
    ("rss_mb", "server RSS MB", ""),
    ("idle_server_cores", "idle cores", ".3f"),
    ("open_server_cores", "cores while opening", ".2f"),
]


def _plot(path: Path, rows: list[dict]) -> None:
    xs = [r["connections"] for r in rows]
    common.plot(
        path,
        title="connections: idle authenticated WebSockets over two server processes",
        xlabel="connections held",
        panels=[
            {
                "ylabel": "server memory per connection, KB",
                "hlines": {"target 40 KB": TARGET_KB_PER_CONNECTION},
                "series": {"KB/conn": (xs, [r["kb_per_connection"] for r in rows])},
            },
            {
                "ylabel": "seconds / cores",
                "series": {
                    "time to open this level's new connections (s)": (
                        xs,
                        [r["open_seconds"] for r in rows],
                    ),
                    "idle server CPU (cores)": (xs, [r["idle_server_cores"] for r in rows]),
                },
            },
        ],
    )


if __name__ == "__main__":
    common.scenario_main(run)
