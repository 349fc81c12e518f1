"""Messaging: 1,000 connected clients, a send-rate sweep, latency and loss (issue #3).

Two runs over two server processes, clients dealt alternately to each server:

- ``direct``: 500 direct conversations; the two members of each sit on different servers,
  so every message crosses processes through the channel layer;
- ``group``: 100 groups of 10 members; each message reaches 9 other members.

Each step sends at a fixed total rate for a fixed time (open loop: sends are scheduled,
not paced by replies), from several generator processes. The send time travels in the
body, so latency is measured from just before the send to each recipient's receipt
(CLOCK_MONOTONIC is system-wide: all processes read one clock). Loss is exact: after a
step, every message of the step is read back from the database and each (recipient,
conversation, seq) it should have produced is checked against what the recipients got.

Target (1:1): 2,000 persisted messages/s with p99 < 50 ms and nothing lost.
"""

import asyncio
import time
import uuid
from pathlib import Path

import psutil

from bench import common, costs
from switchboard_client import Connection, ConnectionClosed, backoff_cap

CLIENTS = 1000
GROUP_SIZE = 10
GENERATORS = 3
TARGET_RATE = 2000
TARGET_P99_MS = 50.0
# ack_wait: how long a step waits for its last replies; collect_max: for its deliveries.
FULL = {
    "clients": CLIENTS,
    "rates": [250, 500, 1000, 1500, 2000, 2500, 3000, 4000],
    "group_rates": [250, 500, 1000, 1500, 2000, 2500, 3000, 4000],
    "seconds": 20.0,
    "warmup_seconds": 2.0,
    "ack_wait": 20.0,
    "collect_max": 180.0,
    "profile": True,
}
QUICK = {  # the whole quick suite must finish in under 3 minutes
    "clients": 300,
    "rates": [250, 500],
    "group_rates": [250],
    "seconds": 1.5,
    "warmup_seconds": 1.0,
    "ack_wait": 5.0,
    "collect_max": 15.0,
    "profile": False,
}
# A step that persists less than this share of the offered rate saturated the servers;
# higher rates would only pile up backlog, so the sweep of that run stops there.
SATURATED_SHARE = 0.8
WARMUP_RATE = 200  # messages/s of the warm-up step (its length: "warmup_seconds")
# Receipts still missing after this long without any arriving count as lost.
QUIET_SECONDS = 5.0


# ---------------------------------------------------------------------------
# Load generator (runs in its own process)
# ---------------------------------------------------------------------------
class Client:
    __slots__ = ("conn", "conversation_id", "conversations", "last_seq", "synced", "token", "uid",
                 "url")  # fmt: skip

    def __init__(self, uid, token, url, conversation_id, conversations):
        self.uid, self.token, self.url = uid, token, url
        self.conversation_id = conversation_id
        self.conversations = conversations
        # The highest seq seen per conversation: what a reconnecting client resumes from.
        self.last_seq = dict.fromkeys(conversations, 0)
        self.synced = asyncio.Event()
        self.conn: Connection | None = None


class Generator:
    """Clients of one load-generator process; they behave like real clients.

    A client the server disconnects (say, a keep-alive ping answered too late by a starved
    server) reconnects and resumes with ``sync`` from the last seq it saw, as
    docs/protocol.md asks; what the server replays counts as delivered late.
    """

    def __init__(self, index: int):
        self.index = index
        # client_id is unique per sender for good (idempotent sends): a generator started
        # again for the same users must not reuse its predecessor's ids.
        self.nonce = uuid.uuid4().hex[:8]
        self.clients: list[Client] = []
        self.readers: list[asyncio.Task] = []
        self.closing = False
        self.ref = 0
        self.pending: dict[int, tuple[float, int]] = {}
        self.acked: dict[int, int] = {}
        self.acked_in_window: dict[int, int] = {}
        self.ack_ms: dict[int, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.receipts: dict[int, list[tuple[int, int, int]]] = {}
        self.latency_ms: dict[int, list[float]] = {}
        self.window_end: dict[int, float] = {}
        self.unexpected_frames = 0
        self.disconnects: dict[str, int] = {}

    async def _open(self, client: Client) -> None:
        client.synced.clear()
        # The Python client's one-socket layer: token header, hello; frames read in bursts.
        client.conn = await Connection.open(
            client.url, token=client.token, open_timeout=60, max_queue=None
        )
        cursors = {str(c): seq for c, seq in client.last_seq.items()}
        await client.conn.send({"type": "sync", "ref": "sync", "data": {"conversations": cursors}})

    async def _connect_one(self, client: Client, sem: asyncio.Semaphore) -> None:
        async with sem:
            await self._open(client)
            self.readers.append(asyncio.create_task(self._read_forever(client)))
            await client.synced.wait()

    async def connect(self, clients: list[tuple], concurrency: int) -> dict:
        self.clients = [Client(*c) for c in clients]
        sem = asyncio.Semaphore(concurrency)
        start = time.monotonic()
        await asyncio.gather(*(self._connect_one(c, sem) for c in self.clients))
        return {"connected": len(self.clients), "seconds": time.monotonic() - start}

    async def _read_forever(self, client: Client) -> None:
        while True:
            try:
                await self._read(client)
                reason = f"closed {client.conn.close_code}"
            except ConnectionClosed as exc:
                reason = f"closed {exc.code if exc.code != 1006 else 'abnormally'}"
            if self.closing:
                return
            self.disconnects[reason] = self.disconnects.get(reason, 0) + 1
            for attempt in range(30):
                try:
                    await self._open(client)
                    break
                except Exception:
                    await asyncio.sleep(backoff_cap(attempt, base=0.2, cap=5.0))
            else:
                return

    async def _read(self, client: Client) -> None:
        monotonic = time.monotonic
        uid = client.uid
        last_seq = client.last_seq
        async for frame in client.conn:
            now = monotonic()
            kind = frame["type"]
            if kind == "message.new":
                data = frame["data"]
                cid, seq = data["conversation_id"], data["seq"]
                if seq > last_seq.get(cid, 0):
                    last_seq[cid] = seq
                if data["sender_id"] == uid:
                    continue  # the sender's own echo
                step_s, _, sent_s = data["body"].partition(":")
                step = int(step_s)
                self.receipts.setdefault(step, []).append((uid, cid, seq))
                self.latency_ms.setdefault(step, []).append((now - float(sent_s)) * 1000)
            elif kind == "reply":
                ref = frame["ref"]
                if ref == "sync":
                    client.synced.set()
                    continue
                sent = self.pending.pop(ref, None)
                if sent is None:
                    continue
                t0, step = sent
                if frame["ok"]:
                    self.acked[step] = self.acked.get(step, 0) + 1
                    if now <= self.window_end.get(step, float("inf")):
                        self.acked_in_window[step] = self.acked_in_window.get(step, 0) + 1
                    self.ack_ms.setdefault(step, []).append((now - t0) * 1000)
                else:
                    code = frame["error"]["code"]
                    self.errors[code] = self.errors.get(code, 0) + 1
            else:
                self.unexpected_frames += 1

    async def step(self, step: int, rate: float, seconds: float, ack_wait: float) -> dict:
        """Send ``rate`` messages/s for ``seconds``, round-robin over my clients."""
        monotonic = time.monotonic
        clients = self.clients
        n_clients = len(clients)
        start = monotonic()
        self.window_end[step] = start + seconds
        sent = send_failed = 0
        max_behind_ms = 0.0
        total = int(rate * seconds)
        while sent < total:
            elapsed = monotonic() - start
            due = min(total, int(elapsed * rate) + 1)
            if due > sent:
                max_behind_ms = max(max_behind_ms, (elapsed - sent / rate) * 1000)
            while sent < due:
                client = clients[sent % n_clients]
                self.ref += 1
                ref = self.ref
                t = monotonic()
                self.pending[ref] = (t, step)
                try:
                    await client.conn.send_raw(
                        f'{{"type":"message.send","ref":{ref},"data":{{"conversation_id":'
                        f'{client.conversation_id},"body":"{step}:{t:.6f}",'
                        f'"client_id":"{self.nonce}-{ref}"}}}}'
                    )
                except ConnectionClosed:
                    # The server dropped this client (a saturated step: its keep-alive
                    # ping went unanswered); its reader reconnects. The send is not made.
                    del self.pending[ref]
                    send_failed += 1
                sent += 1
            await asyncio.sleep(0.002)
        send_seconds = monotonic() - start
        deadline = monotonic() + ack_wait
        # Polling is fine here: the step is over, nothing else is timed.
        while any(s == step for _, s in self.pending.values()) and monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        unacked = sum(1 for _, s in self.pending.values() if s == step)
        for ref in [r for r, (_, s) in self.pending.items() if s == step]:
            del self.pending[ref]
        disconnects, self.disconnects = self.disconnects, {}
        return {
            "sent": sent - send_failed,
            "send_failed": send_failed,
            "send_seconds": send_seconds,
            "acked": self.acked.pop(step, 0),
            "acked_in_window": self.acked_in_window.pop(step, 0),
            "unacked": unacked,
            "ack_ms": self.ack_ms.pop(step, []),
            "errors": dict(self.errors),
            "max_behind_ms": max_behind_ms,
            "disconnects": disconnects,
        }

    async def collect(self, step: int, expected: int, max_wait: float) -> dict:
        """Hand over the receipts of ``step`` once I have ``expected`` of them.

        A saturated server delivers late, not never: keep waiting while receipts still come
        in; give up after ``QUIET_SECONDS`` without one (or ``max_wait`` in all): what is
        missing then counts as lost.
        """
        deadline = time.monotonic() + max_wait
        last_count, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = len(self.receipts.get(step, ()))
            if count >= expected:
                break
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            elif time.monotonic() - last_change > QUIET_SECONDS:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # a late duplicate would show up here
        self.errors.clear()
        disconnects, self.disconnects = self.disconnects, {}
        return {
            "disconnects": disconnects,
            "receipts": self.receipts.pop(step, []),
            "latency_ms": self.latency_ms.pop(step, []),
            "unexpected_frames": self.unexpected_frames,
        }

    async def late(self) -> dict:
        """Hand over receipts that arrived after their step was collected."""
        late, self.receipts, self.latency_ms = self.receipts, {}, {}
        return late

    async def close(self) -> dict:
        self.closing = True
        for task in self.readers:
            task.cancel()
        await asyncio.gather(
            *(c.conn.close() for c in self.clients if c.conn), return_exceptions=True
        )
        self.clients = []
        return {"closed": True}


def generator_main(conn, index: int) -> None:
    gen = Generator(index)
    common.worker_loop(
        conn,
        {
            "connect": gen.connect,
            "step": gen.step,
            "collect": gen.collect,
            "late": gen.late,
            "close": gen.close,
        },
    )


# ---------------------------------------------------------------------------
# The scenario (runs in the bench process)
# ---------------------------------------------------------------------------
def _fixtures(kind: str, clients: int) -> tuple[list[tuple], dict[int, list[int]]]:
    """Create users and conversations; return client specs and members per conversation."""
    users = common.users_create(count=clients, prefix=f"msg{kind}")
    ids = [u for u, _ in users]
    if kind == "direct":
        pairs = [(ids[i], ids[i + 1]) for i in range(0, clients, 2)]
        convs = common.conversations_direct_create(pairs)
        members = {cid: list(pair) for cid, pair in zip(convs, pairs, strict=True)}
    else:
        groups = [ids[i : i + GROUP_SIZE] for i in range(0, clients, GROUP_SIZE)]
        convs = common.conversations_group_create(groups, title="bench")
        members = {cid: list(g) for cid, g in zip(convs, groups, strict=True)}
    conv_of = {uid: cid for cid, uids in members.items() for uid in uids}
    # (uid, token, server index, conversation); client i goes to server i % 2, so both
    # members of a direct conversation are on different servers.
    specs = [(uid, token, i % 2, conv_of[uid]) for i, (uid, token) in enumerate(users)]
    return specs, members


def _step_messages(after_id: int) -> list[tuple[int, int, int, int, str]]:
    from conversations.models import Message

    return list(
        Message.objects.filter(pk__gt=after_id)
        .order_by("pk")
        .values_list("pk", "conversation_id", "seq", "sender_id", "body")
    )


def _max_message_id() -> int:
    from django.db.models import Max

    from conversations.models import Message

    return Message.objects.aggregate(m=Max("pk"))["m"] or 0


def _run_step(workers, gen_of, members, step, rate, mode, servers, label) -> dict:
    """One step of the sweep: send, wait for acks, check every delivery against the DB."""
    n = len(workers.procs)
    before_id = _max_message_id()
    cost = costs.CostMeter([s.process for s in servers]).start()
    meter = common.CpuMeter([s.process for s in servers]).start()
    gen_meter = common.CpuMeter([psutil.Process(pid) for pid in workers.pids]).start()
    seconds, ack_wait = mode["seconds"], mode["ack_wait"]
    workers.send(("step", step, rate / n, seconds, ack_wait))
    bar = common.progress(seconds, f"{label} {rate:>5}/s", unit="s")
    t0 = time.monotonic()

    def tick():
        done = min(time.monotonic() - t0, seconds)
        bar.update(done - bar.n)

    sends = workers.gather(timeout=seconds + ack_wait + 60, on_wait=tick)
    bar.close()
    cpu = meter.stop()
    gen_cpu = gen_meter.stop()
    cost.end()
    messages = [m for m in _step_messages(before_id) if m[4].startswith(f"{step}:")]
    expected_by_gen: list[list[tuple]] = [[] for _ in range(n)]
    for _pk, cid, seq, sender, _body in messages:
        for uid in members[cid]:
            if uid != sender:
                expected_by_gen[gen_of[uid]].append((uid, cid, seq))
    collected = workers.ask(
        None,
        per_worker=[("collect", step, len(e), mode["collect_max"]) for e in expected_by_gen],
        timeout=mode["collect_max"] + 60,
    )
    # PostgreSQL's counters are read once published (bench/costs.py), after the collection.
    step_costs = costs.summary(cost.result(), messages=len(messages))
    expected = [k for e in expected_by_gen for k in e]
    received = [k for c in collected for k in c["receipts"]]
    check = common.deliveries_compare(expected, received)
    missing = set(expected) - set(received)
    latency = common.latency_summary([x for c in collected for x in c["latency_ms"]])
    ack = common.latency_summary([x for s in sends for x in s["ack_ms"]])
    sent = sum(s["sent"] for s in sends)
    window = max(s["send_seconds"] for s in sends)
    errors: dict[str, int] = {}
    disconnects: dict[str, int] = {}
    for s in sends:
        for code, k in s["errors"].items():
            errors[code] = errors.get(code, 0) + k
        for why, k in s["disconnects"].items():
            disconnects[why] = disconnects.get(why, 0) + k
    for c in collected:
        for why, k in c["disconnects"].items():
            disconnects[why] = disconnects.get(why, 0) + k
    return {
        "run": label,
        "step": step,
        "offered": rate,
        "sent": sent,
        "sent_rate": round(sent / window, 1),
        "persisted": len(messages),
        "achieved": round(sum(s["acked_in_window"] for s in sends) / window, 1),
        "unacked": sum(s["unacked"] for s in sends),
        # Sends not made: the client had been dropped (it reconnected and went on).
        "send_failed": sum(s["send_failed"] for s in sends),
        "errors": errors,
        # Clients the server dropped during the step (they reconnected and resumed).
        "disconnects": disconnects,
        "deliveries": check["expected"],
        # Missing when the step was checked; "lost" is what is still missing at the end
        # of the run (a saturated server may deliver very late, but must deliver).
        "missing": missing,
        "late": 0,
        "lost": check["lost"],
        "duplicated": check["duplicated"],
        "p50": latency["p50"],
        "p95": latency["p95"],
        "p99": latency["p99"],
        "max": latency["max"],
        "ack_p99": ack["p99"],
        "generator_max_behind_ms": round(max(s["max_behind_ms"] for s in sends), 1),
        "server_cores": cpu["total"],
        # CPU per message holds up better than rates on a machine shared with other work.
        "server_cpu_ms_per_msg": round(cpu["total"] * window * 1000 / max(len(messages), 1), 2),
        "generator_cores": gen_cpu["total"],
        "machine_cores": cpu["machine"],
        "seconds": seconds,
        "redis_commands_per_msg": step_costs.get("per_message", {}).get("redis_commands"),
        "pg_commits_per_msg": step_costs.get("per_message", {}).get("pg_commits"),
        "costs": step_costs,
    }


def _reconcile_late(workers, steps: list[dict], max_wait: float) -> None:
    """Count deliveries that came after their step's check; what is still missing is lost.

    Polls the generators until a poll brings nothing new for a step that still misses
    deliveries (``QUIET_SECONDS`` apart), or ``max_wait`` passes.
    """
    late: dict[int, set] = {}
    deadline = time.monotonic() + max_wait
    polls = 0
    while True:
        polls += 1
        got = 0
        for reply in workers.ask(("late",), timeout=120):
            for step, keys in reply.items():
                late.setdefault(step, set()).update(keys)
                got += len(keys)
        still = any(row.get("missing", set()) - late.get(row.get("step"), set()) for row in steps)
        if not still or (got == 0 and polls > 1) or time.monotonic() > deadline:
            break
        time.sleep(QUIET_SECONDS)
    for row in steps:
        missing = row.pop("missing", None)
        if missing is None:
            continue
        arrived = missing & late.get(row["step"], set())
        row["late"] = len(arrived)
        row["lost"] = len(missing) - len(arrived)


def clients_deal(specs: list, urls: list[str]) -> tuple[list[list], dict[int, int]]:
    """Deal ``(uid, token, server, conversation)`` specs over the generator processes.

    Return each generator's client tuples and which generator holds each user.
    """
    per_gen = common.split(specs, GENERATORS)
    gen_of = {spec[0]: g for g, chunk in enumerate(per_gen) for spec in chunk}
    clients = [
        [(uid, tok, urls[srv], cid, [cid]) for uid, tok, srv, cid in chunk] for chunk in per_gen
    ]
    return clients, gen_of


def clients_connect(workers, clients: list[list], *, timeout: float) -> float:
    """Connect every generator's clients (100 at a time each); return the seconds it took."""
    t0 = time.monotonic()
    workers.ask(None, per_worker=[("connect", c, 100) for c in clients], timeout=timeout)
    return time.monotonic() - t0


def _run(kind: str, rates: list[int], mode: dict, results_dir: Path) -> dict:
    seconds = mode["seconds"]
    specs, members = _fixtures(kind, mode["clients"])
    with common.servers(2, results_dir=results_dir) as servers:
        clients, gen_of = clients_deal(specs, [s.ws_url for s in servers])
        with common.Workers(generator_main, [(i,) for i in range(GENERATORS)]) as workers:
            connect_seconds = clients_connect(workers, clients, timeout=300)
            print(f"  {kind}: {mode['clients']} clients connected in {connect_seconds:.1f} s")
            # Warm-up: code paths, database connections of every worker thread.
            _run_step(
                workers,
                gen_of,
                members,
                0,
                WARMUP_RATE,
                {**mode, "seconds": mode["warmup_seconds"]},
                servers,
                f"{kind} warm-up",
            )
            steps = []
            for i, rate in enumerate(rates, start=1):
                spy = raw = None
                if mode["profile"] and common.py_spy_available():
                    # Where server a spends its CPU at this rate (GIL holder sampled).
                    raw = results_dir / f"messaging-{kind}-{rate}-server-a.pyspy.txt"
                    spy = common.py_spy_record(servers[0].pid, seconds, raw)
                row = _run_step(workers, gen_of, members, i, rate, mode, servers, kind)
                if spy is not None:
                    row["profile"] = common.py_spy_collect(spy, raw)
                steps.append(row)
                print(
                    f"  {kind} {rate:>5}/s: achieved {row['achieved']:.0f}/s p99 {row['p99']} ms "
                    f"missing {len(row['missing'])} dup {row['duplicated']}",
                    flush=True,
                )
                if row["persisted"] < SATURATED_SHARE * rate * seconds:
                    for skipped in rates[i:]:
                        steps.append({"run": kind, "offered": skipped, "skipped": "saturated"})
                    break
            _reconcile_late(workers, steps, mode["collect_max"])
            workers.ask(("close",), timeout=120)
    return {"kind": kind, "connect_seconds": round(connect_seconds, 2), "steps": steps}


COLUMNS = [
    ("run", "run", ""),
    ("offered", "offered/s", ""),
    ("achieved", "achieved/s", ".0f"),
    ("persisted", "persisted", ""),
    ("deliveries", "deliveries", ""),
    ("late", "late", ""),
    ("lost", "lost", ""),
    ("duplicated", "dup", ""),
    ("p50", "p50 ms", ".1f"),
    ("p95", "p95 ms", ".1f"),
    ("p99", "p99 ms", ".1f"),
    ("ack_p99", "ack p99 ms", ".1f"),
    ("server_cores", "server cores", ".2f"),
    ("server_cpu_ms_per_msg", "server CPU ms/msg", ".2f"),
    ("redis_commands_per_msg", "bus cmds/msg", ".2f"),
    ("pg_commits_per_msg", "PG commits/msg", ".2f"),
    ("generator_cores", "gen cores", ".2f"),
    ("machine_cores", "machine cores", ".2f"),
    ("skipped", "note", ""),
]


def _targets(direct: list[dict], group: list[dict]) -> list[dict]:
    ran = [s for s in direct if not s.get("skipped")]
    at = next((s for s in ran if s["offered"] == TARGET_RATE), None)
    if at is None:
        measured, met = "not run: saturated at a lower rate", False
    else:
        met = (
            at["achieved"] >= 0.97 * TARGET_RATE
            and at["p99"] is not None
            and at["p99"] < TARGET_P99_MS
            and at["lost"] == 0
        )
        measured = f"{at['achieved']:.0f}/s, p99 {at['p99']} ms"
    held = [
        s["offered"]
        for s in ran
        if s["p99"] is not None
        and s["p99"] < TARGET_P99_MS
        and s["achieved"] >= 0.97 * s["offered"]
    ]
    best = max(held, default=0)
    lost = sum(s.get("lost", 0) for s in direct + group)
    return [
        {
            "name": "1:1 at 2,000 messages/s",
            "target": f"{TARGET_RATE}/s persisted and delivered, p99 < {TARGET_P99_MS:.0f} ms",
            "measured": measured,
            "met": met,
        },
        {
            "name": "1:1 highest offered rate held at p99 < 50 ms",
            "target": f">= {TARGET_RATE}/s",
            "measured": f"{best}/s",
            "met": best >= TARGET_RATE,
        },
        {"name": "messages lost (both runs)", "target": 0, "measured": lost, "met": lost == 0},
    ]


def run(*, quick: bool, results_dir: Path) -> dict:
    common.setup(results_dir)
    mode = QUICK if quick else FULL
    direct = _run("direct", mode["rates"], mode, results_dir)
    group = _run("group", mode["group_rates"], {**mode, "profile": False}, results_dir)
    rows = direct["steps"] + group["steps"]
    print(common.table(rows, COLUMNS))
    targets = _targets(direct["steps"], group["steps"])
    result = {
        "scenario": "messaging",
        "quick": quick,
        "clients": mode["clients"],
        "generators": GENERATORS,
        "group_size": GROUP_SIZE,
        "step_seconds": mode["seconds"],
        "machine_load": common.machine_load(0.5),
        "runs": {"direct": direct, "group": group},
        "targets": targets,
        # bench/costs.py: what each step's messages cost (the suite's summary prints it).
        "cost_summary": {
            f"{s['run']} {s['offered']}/s, per message": s["costs"]["per_message"]
            for s in rows
            if "per_message" in s.get("costs", {})
        },
    }
    common.write_json(results_dir / "messaging.json", result)
    _plot(results_dir / "messaging.png", direct["steps"], group["steps"])
    for t in targets:
        print(f"  target {t['name']}: {t['measured']} -> {'met' if t['met'] else 'MISSED'}")
    return result


def _plot(path: Path, direct: list[dict], group: list[dict]) -> None:
    def series(steps, key):
        done = [s for s in steps if not s.get("skipped")]
        return [s["offered"] for s in done], [s[key] for s in done]

    common.plot(
        path,
        title="messaging: 1,000 clients, two server processes",
        xlabel="offered messages/s",
        panels=[
            {
                "ylabel": "achieved messages/s (acked in the window)",
                "diagonal": True,
                "series": {
                    "1:1": series(direct, "achieved"),
                    "groups of 10": series(group, "achieved"),
                },
            },
            {
                "ylabel": "send -> receipt latency, ms (log)",
                "logy": True,
                "hlines": {"target p99 50 ms": TARGET_P99_MS},
                "series": {
                    "1:1 p50": series(direct, "p50"),
                    "1:1 p99": series(direct, "p99"),
                    "group p50": series(group, "p50"),
                    "group p99": series(group, "p99"),
                },
            },
        ],
    )


if __name__ == "__main__":
    common.scenario_main(run)
