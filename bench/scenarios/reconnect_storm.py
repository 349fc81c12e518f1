"""Reconnect storm: every client drops at once while messages keep flowing, then resumes.

Issue #8: 5,000 connected clients (300 in quick mode) in groups of 50, each group with one
more member, its sender, on a generator process of its own that is never dropped. The
senders send at a fixed total rate (open loop) for the whole window; ``DROP_AFTER`` seconds
in, every storm client's socket is aborted at once (no close handshake, as when a network
or a load balancer goes away). Each client reconnects at once and resumes as
docs/protocol.md says: ``sync`` with the last seq it holds; the server replays what it
missed. The storm clients are dealt alternately to the two server processes.

Measured:

- **caught up**: per client, the moment it has re-synced *and* holds every message sent
  before that re-sync (its replay); the scenario's time is the latest of these, from the
  drop. Messages sent after a client's re-sync are live traffic; their latency is reported
  apart;
- **lost and duplicated**: every message of the window is read back from PostgreSQL and
  each (recipient, conversation, seq) it should produce is looked for among the receipts.

Target: all caught up within 10 s, 0 lost, 0 duplicated.
"""

import asyncio
import time
from collections import defaultdict
from pathlib import Path

from bench import common
from bench.scenarios import messaging
from bench.scenarios.messaging import Generator

GROUP = 50
STORM_GENERATORS = 3
TARGET_SECONDS = 10.0
DROP_AFTER = 2.0
FULL = {"clients": 5000, "rate": 20.0, "seconds": 8.0, "catchup_max": 180.0, "profile": 30}
# Quick (the whole quick suite must finish in under 3 minutes): 300 clients.
QUICK = {"clients": 300, "rate": 10.0, "seconds": 4.0, "catchup_max": 60.0, "profile": 0}


class StormGenerator(Generator):
    """The messaging generator plus ``drop`` (abort every socket) and re-sync times."""

    def __init__(self, index: int):
        super().__init__(index)
        self.synced_at: dict[int, float] = {}

    async def _open(self, client) -> None:
        await super()._open(client)
        asyncio.create_task(self._note_sync(client))  # noqa: RUF006 - ends with the sync

    async def _note_sync(self, client) -> None:
        await client.synced.wait()
        self.synced_at[client.uid] = time.monotonic()

    async def drop(self) -> float:
        at = time.monotonic()
        for client in self.clients:
            client.conn.abort()
        return at

    async def resynced(self, after: float, max_wait: float) -> dict:
        """Wait until every client has re-synced after ``after``; return each one's time."""
        deadline = time.monotonic() + max_wait
        while time.monotonic() < deadline:  # polling: the storm is over, nothing is timed
            if all(self.synced_at.get(c.uid, 0) > after for c in self.clients):
                break
            await asyncio.sleep(0.05)
        return {c.uid: self.synced_at.get(c.uid) for c in self.clients}


def generator_main(conn, index: int) -> None:
    gen = StormGenerator(index)
    common.worker_loop(
        conn,
        {
            "connect": gen.connect,
            "step": gen.step,
            "collect": gen.collect,
            "drop": gen.drop,
            "resynced": gen.resynced,
            "close": gen.close,
        },
    )


def _fixtures(clients: int):
    """Groups of ``GROUP`` storm clients plus one sender each; return specs and members."""
    groups_n = clients // GROUP
    storm = common.users_create(count=groups_n * GROUP, prefix="storm")
    senders = common.users_create(count=groups_n, prefix="stormsend")
    groups = [
        [senders[g][0], *(u for u, _ in storm[g * GROUP : (g + 1) * GROUP])]
        for g in range(groups_n)
    ]
    convs = common.conversations_group_create(groups, title="storm")
    members = {cid: g for cid, g in zip(convs, groups, strict=True)}
    storm_specs = [(uid, tok, i % 2, convs[i // GROUP]) for i, (uid, tok) in enumerate(storm)]
    sender_specs = [(uid, tok, g % 2, convs[g]) for g, (uid, tok) in enumerate(senders)]
    return storm_specs, sender_specs, members


def _run(mode: dict, results_dir: Path) -> dict:
    storm_specs, sender_specs, members = _fixtures(mode["clients"])
    before_id = messaging._max_message_id()
    with common.servers(2, results_dir=results_dir) as servers:
        urls = [s.ws_url for s in servers]

        def client(spec):
            uid, tok, srv, cid = spec
            return (uid, tok, urls[srv], cid, [cid])

        chunks = common.split(storm_specs, STORM_GENERATORS)
        gen_of = {spec[0]: g for g, chunk in enumerate(chunks) for spec in chunk}
        with (
            common.Workers(generator_main, [(i,) for i in range(STORM_GENERATORS)]) as storm,
            common.Workers(generator_main, [(STORM_GENERATORS,)]) as sender,
        ):
            t0 = time.monotonic()
            storm.ask(
                None,
                per_worker=[("connect", [client(s) for s in c], 100) for c in chunks],
                timeout=900,
            )
            sender.ask(("connect", [client(s) for s in sender_specs], 50), timeout=300)
            connect_seconds = time.monotonic() - t0
            print(f"  storm: {len(storm_specs)} clients connected in {connect_seconds:.1f} s")
            sender.send(("step", 1, mode["rate"], mode["seconds"], 30.0))
            time.sleep(DROP_AFTER)
            spy = raw = None
            if mode["profile"] and common.py_spy_available():
                # Where server a spends its CPU while the storm reconnects (GIL holder).
                raw = results_dir / "reconnect_storm-server-a.pyspy.txt"
                spy = common.py_spy_record(servers[0].pid, mode["profile"], raw)
            meter = common.CpuMeter([s.process for s in servers]).start()
            t_drop = min(storm.ask(("drop",), timeout=120))
            with common.progress(len(storm_specs), "storm: re-synced", unit="clients") as bar:
                sends = sender.gather(timeout=mode["seconds"] + 120)
                synced: dict[int, float | None] = {}
                for reply in storm.ask(("resynced", t_drop, mode["catchup_max"]), timeout=900):
                    synced.update(reply)
                bar.update(sum(1 for t in synced.values() if t and t > t_drop))
            cpu = meter.stop()
            profile = common.py_spy_collect(spy, raw, top=20)
            messages = [m for m in messaging._step_messages(before_id) if m[4].startswith("1:")]
            sent_at = {
                (cid, seq): float(body.split(":", 1)[1]) for _, cid, seq, _, body in messages
            }
            expected_by_gen: list[list[tuple]] = [[] for _ in chunks]
            for _pk, cid, seq, sender_id, _body in messages:
                for uid in members[cid]:
                    if uid != sender_id:
                        expected_by_gen[gen_of[uid]].append((uid, cid, seq))
            collected = storm.ask(
                None,
                per_worker=[("collect", 1, len(e), mode["catchup_max"]) for e in expected_by_gen],
                timeout=mode["catchup_max"] + 60,
            )
            storm.ask(("close",), timeout=120)
            sender.ask(("close",), timeout=120)
    expected = [k for e in expected_by_gen for k in e]
    received = [k for c in collected for k in c["receipts"]]
    check = common.deliveries_compare(expected, received)
    # Receipt time of every delivery = its send time + its latency (one clock for all).
    got_at: dict[tuple, float] = {}
    for c in collected:
        for (uid, cid, seq), ms in zip(c["receipts"], c["latency_ms"], strict=True):
            got_at.setdefault((uid, cid, seq), sent_at[(cid, seq)] + ms / 1000)
    by_client: dict[int, list[tuple]] = defaultdict(list)
    for uid, cid, seq in expected:
        by_client[uid].append((cid, seq))
    caught: list[float] = []
    live_ms: list[float] = []
    never = 0
    for uid, _tok, _srv, _cid in storm_specs:
        at = synced.get(uid)
        if at is None or at <= t_drop:
            never += 1
            continue
        done = at
        for cid, seq in by_client.get(uid, ()):
            when = got_at.get((uid, cid, seq))
            if sent_at[(cid, seq)] <= at:
                done = max(done, when if when is not None else float("inf"))
            elif when is not None:
                live_ms.append((when - sent_at[(cid, seq)]) * 1000)
        caught.append(done - t_drop)
    finite = [c for c in caught if c != float("inf")]
    resync = [synced[u] - t_drop for u, *_ in storm_specs if (synced.get(u) or 0) > t_drop]
    last_sync = max(resync, default=0.0)
    return {
        "connect_seconds": round(connect_seconds, 2),
        # Server CPU from the drop until every client had re-synced (and the senders
        # stopped), per reconnection: what one re-sync costs both servers together.
        "server_cores": cpu["total"],
        "server_cpu_ms_per_resync": round(
            cpu["total"] * cpu["seconds"] * 1000 / max(len(resync), 1), 2
        ),
        "last_resync_s": round(last_sync, 2),
        "profile": profile,
        "messages": len(messages),
        "acked": sum(s["acked"] for s in sends),
        "deliveries": check["expected"],
        "lost": check["lost"],
        "duplicated": check["duplicated"],
        "never_resynced": never,
        "not_caught_up": len(caught) - len(finite) + never,
        "caught_up_all_s": round(max(caught), 2) if caught and not never else None,
        "caught_up": _seconds(finite),
        "resynced": _seconds(resync),
        "live_latency_after_resync_ms": common.latency_summary(live_ms),
        "caught_up_curve": sorted(round(c, 3) for c in finite),
    }


def _seconds(values: list[float]) -> dict:
    s = common.latency_summary([v * 1000 for v in values])  # same rounding, in ms
    return {k: (None if v is None else round(v / 1000, 2)) if k != "count" else v
            for k, v in s.items()}  # fmt: skip


COLUMNS = [
    ("what", "from the drop", ""),
    ("count", "clients", ""),
    ("p50", "p50 s", ".2f"),
    ("p95", "p95 s", ".2f"),
    ("p99", "p99 s", ".2f"),
    ("max", "max s", ".2f"),
]


def run(*, quick: bool, results_dir: Path) -> dict:
    common.setup(results_dir)
    mode = QUICK if quick else FULL
    res = _run(mode, results_dir)
    print(
        common.table(
            [
                {"what": "re-synced", **res["resynced"]},
                {"what": "caught up", **res["caught_up"]},
            ],
            COLUMNS,
        )
    )
    live = res["live_latency_after_resync_ms"]
    print(
        f"  servers: {res['server_cores']:.2f} cores from the drop to the last re-sync, "
        f"{res['server_cpu_ms_per_resync']} ms of server CPU per re-sync"
    )
    if res["profile"]:
        print(f"  profile of server a ({res['profile']['samples']} samples):")
        print(common.table(res["profile"]["top"], [("kind", "kind", ""), ("where", "where", ""),
                                                   ("percent", "%", ".1f")]))  # fmt: skip
    print(
        f"  {res['messages']} messages, {res['deliveries']} deliveries: lost {res['lost']}, "
        f"duplicated {res['duplicated']}, never re-synced {res['never_resynced']}; live "
        f"latency after re-sync p50 {live['p50']} ms p99 {live['p99']} ms"
    )
    all_s = res["caught_up_all_s"]
    targets = [
        {
            "name": f"reconnect storm of {mode['clients']:,}: all caught up",
            "target": f"< {TARGET_SECONDS:.0f} s",
            "measured": f"{all_s} s" if all_s is not None else "not all caught up",
            "met": all_s is not None and all_s < TARGET_SECONDS,
        },
        {
            "name": "reconnect storm: lost / duplicated",
            "target": "0 / 0",
            "measured": f"{res['lost']} / {res['duplicated']}",
            "met": res["lost"] == 0 and res["duplicated"] == 0,
        },
    ]
    result = {
        "scenario": "reconnect_storm",
        "quick": quick,
        "clients": mode["clients"],
        "group_size": GROUP,
        "rate": mode["rate"],
        "window_seconds": mode["seconds"],
        "drop_after_seconds": DROP_AFTER,
        "machine_load": common.machine_load(0.5),
        **res,
        "targets": targets,
    }
    common.write_json(results_dir / "reconnect_storm.json", result)
    curve = res["caught_up_curve"]
    common.plot(
        results_dir / "reconnect_storm.png",
        title=f"reconnect storm: {mode['clients']:,} clients drop at once",
        xlabel="seconds after the drop",
        panels=[
            {
                "ylabel": "clients caught up",
                "series": {"caught up": (curve, list(range(1, len(curve) + 1)))},
            }
        ],
    )
    for t in targets:
        print(f"  target {t['name']}: {t['measured']} -> {'met' if t['met'] else 'MISSED'}")
    return result


if __name__ == "__main__":
    common.scenario_main(run)
