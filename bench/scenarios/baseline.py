"""Limit and baseline: the relay of ``messaging`` through two reference designs (#8).

(a) The machine's practical limit: ``bench/baseline_relay.py`` (no Django, no database, no
persistence, one ``PUBLISH`` per message, one pub/sub subscription per process).
(b) The naive Channels design: ``bench/naive_channels.py`` (core ``RedisChannelLayer``, one
socket per room, a synchronous consumer doing an ORM transaction per message).

Each runs in two uvicorn processes started with the Procfile's options, driven by the very
load generator of the ``messaging`` scenario: 1,000 clients, 500 pairs whose two members sit
on different servers, three generator processes, open-loop sends at a fixed total rate,
latency from just before the send to the recipient's receipt.

The bare relay also runs ``messaging``'s groups: 100 groups of 10, the members of each
dealt alternately to the two servers, each message reaching the 9 others (issue #13's
groups target is judged against it: the same load on the machine's limit).

Loss is counted per recipient: the messages each client's partners sent in a step (known
from how the generator deals its sends) against what the client received.

Switchboard is reported as a ratio of both: from ``messaging.json`` of the same run
when ``messaging`` ran before (``make bench`` runs it first), else from the last numbers in
docs/benchmarks.md (``SWITCHBOARD_DOC``).
"""

import json
import time
from collections import Counter
from pathlib import Path

import psutil

from bench import common
from bench.scenarios.messaging import QUIET_SECONDS, generator_main

CLIENTS = 1000
GENERATORS = 3
GROUP_SIZE = 10  # as messaging's group run
HELD_P99_MS = 50.0  # the messaging target's latency bound: "held" means p99 below it
# variant -> (ASGI app, label); both run in two uvicorn processes with the Procfile's options.
VARIANTS = {
    "relay": ("bench.baseline_relay:app", "bare relay"),
    "naive": ("bench.naive_channels:application", "naive Channels"),
}
# run -> (variant, conversation size, label)
RUNS = {
    "relay": ("relay", 2, "bare relay"),
    "naive": ("naive", 2, "naive Channels"),
    "relay_group": ("relay", GROUP_SIZE, "bare relay, groups of 10"),
}
FULL = {
    "clients": CLIENTS,
    "rates": {
        "relay": [250, 500, 1000, 2000, 3000, 4000, 6000, 8000],
        "naive": [250, 500, 1000, 2000, 4000],
        "relay_group": [250, 500, 1000, 2000, 3000, 4000, 6000],
    },
    "seconds": 10.0,
    "warmup_seconds": 2.0,
    "ack_wait": 10.0,
    "collect_max": 60.0,
}
QUICK = {  # the whole quick suite must finish in under 3 minutes
    "clients": 300,
    "rates": {"relay": [250, 1000, 4000], "naive": [250], "relay_group": [250]},
    "seconds": 1.5,
    "warmup_seconds": 1.0,
    "ack_wait": 5.0,
    "collect_max": 15.0,
}
SATURATED_SHARE = 0.8
# docs/benchmarks.md, "Messaging on a quiet machine", commit 07b35ec (quick run, 3 s steps).
SWITCHBOARD_DOC = {
    "source": "docs/benchmarks.md (quiet machine, commit 07b35ec, quick run)",
    "steps": [
        {"offered": 250, "achieved": 233, "p99": 353.0},
        {"offered": 1000, "achieved": 242, "p99": None},
    ],
}


def _missing(want: Counter, got: Counter) -> int:
    return sum(max(k - got.get(uid, 0), 0) for uid, k in want.items())


def _reconcile_late(workers, steps: list[dict], max_wait: float) -> None:
    """Credit deliveries that came after their step's check; what never came is lost."""
    deadline = time.monotonic() + max_wait
    polls = 0
    while any(s["lost"] for s in steps) and time.monotonic() < deadline:
        polls += 1
        got = 0
        for reply in workers.ask(("late",), timeout=120):
            for row in steps:
                for uid, _cid, _seq in reply.get(row["step"], ()):
                    row["_got"][uid] += 1
                    got += 1
        for row in steps:
            row["lost"] = _missing(row["_want"], row["_got"])
            row["late"] = row["missing"] - row["lost"]
        if got == 0 and polls > 1:
            break
        time.sleep(QUIET_SECONDS)
    for row in steps:
        del row["_want"], row["_got"]


def _app_servers(app: str, label: str, results_dir: Path) -> list[common.Server]:
    env = common.setup()
    log_dir = results_dir / "logs"
    started = []
    for i in range(2):
        name = f"{label}-{chr(ord('a') + i)}"
        s = common.Server(name, {**env, "RELAY_NODE": str(i)}, log_dir, app=app)
        s.spawn()
        started.append(s)
    try:
        for s in started:
            s.wait_ready()
    except Exception:
        for s in started:
            s.stop()
        raise
    return started


def _step(workers, chunks, others, gen_of, step, rate, mode, servers, label) -> dict:
    n = len(workers.procs)
    meter = common.CpuMeter([s.process for s in servers]).start()
    gen_meter = common.CpuMeter([psutil.Process(pid) for pid in workers.pids]).start()
    seconds, ack_wait = mode["seconds"], mode["ack_wait"]
    workers.send(("step", step, rate / n, seconds, ack_wait))
    bar = common.progress(seconds, f"{label} {rate:>5}/s", unit="s")
    t0 = time.monotonic()

    def tick():
        bar.update(min(time.monotonic() - t0, seconds) - bar.n)

    sends = workers.gather(timeout=seconds + ack_wait + 60, on_wait=tick)
    bar.close()
    cpu = meter.stop()
    gen_cpu = gen_meter.stop()
    # Generator g sends from its clients round-robin: chunk[k % len(chunk)] for k < sent.
    want: Counter = Counter()
    for chunk, s in zip(chunks, sends, strict=True):
        for k in range(s["sent"]):
            want.update(others[chunk[k % len(chunk)][0]])
    expected_by_gen = [0] * n
    for uid, k in want.items():
        expected_by_gen[gen_of[uid]] += k
    collected = workers.ask(
        None,
        per_worker=[("collect", step, e, mode["collect_max"]) for e in expected_by_gen],
        timeout=mode["collect_max"] + QUIET_SECONDS + 60,
    )
    got = Counter(uid for c in collected for uid, _cid, _seq in c["receipts"])
    keys = [k for c in collected for k in c["receipts"]]
    missing = _missing(want, got)
    surplus = sum(max(k - want.get(uid, 0), 0) for uid, k in got.items())
    latency = common.latency_summary([x for c in collected for x in c["latency_ms"]])
    ack = common.latency_summary([x for s in sends for x in s["ack_ms"]])
    sent = sum(s["sent"] for s in sends)
    window = max(s["send_seconds"] for s in sends)
    return {
        "run": label,
        "step": step,
        "offered": rate,
        "sent": sent,
        "achieved": round(sum(s["acked_in_window"] for s in sends) / window, 1),
        "acked": sum(s["acked"] for s in sends),
        "deliveries": sum(want.values()),
        # Missing at the step's check; "lost" is what is still missing at the end (late
        # deliveries of a saturated server are delivered, not lost).
        "missing": missing,
        "late": 0,
        "lost": missing,
        "_want": want,
        "_got": got,
        "duplicated": max(surplus, len(keys) - len(set(keys))),
        "p50": latency["p50"],
        "p95": latency["p95"],
        "p99": latency["p99"],
        "max": latency["max"],
        "ack_p99": ack["p99"],
        "generator_max_behind_ms": round(max(s["max_behind_ms"] for s in sends), 1),
        "server_cores": cpu["total"],
        "server_cpu_ms_per_msg": round(cpu["total"] * window * 1000 / max(sent, 1), 3),
        "generator_cores": gen_cpu["total"],
        "machine_cores": cpu["machine"],
        "seconds": seconds,
    }


def _client(uid: int, url: str, cid: int) -> tuple:
    """A generator client spec; the relay reads user and conversation from the URL."""
    return (uid, "-", f"{url}?uid={uid}&c={cid}", cid, [cid])


def _run(name: str, rates: list[int], mode: dict, results_dir: Path) -> dict:
    variant, size, label = RUNS[name]
    app = VARIANTS[variant][0]
    clients_n = mode["clients"]
    if variant == "naive":  # stores messages: real users and conversations (direct only)
        ids = [u for u, _ in common.users_create(count=clients_n, prefix="naive")]
        pairs = [(ids[i], ids[i + 1]) for i in range(0, clients_n, 2)]
        convs = common.conversations_direct_create(pairs)
        members = [list(p) for p in pairs]
    else:  # no database: any ids
        ids = list(range(1, clients_n + 1))
        members = [ids[i : i + size] for i in range(0, clients_n, size)]
        convs = list(range(1, len(members) + 1))
    # Each client's recipients: the other members of its conversation.
    others, conv_of = {}, {}
    for uids, cid in zip(members, convs, strict=True):
        for uid in uids:
            others[uid] = [o for o in uids if o != uid]
            conv_of[uid] = cid
    # (uid, server index); client i goes to server i % 2: both of a pair on different ones.
    specs = [(uid, i % 2) for i, uid in enumerate(ids)]
    chunks = common.split(specs, GENERATORS)
    gen_of = {uid: g for g, chunk in enumerate(chunks) for uid, _srv in chunk}
    servers = _app_servers(app, name, results_dir)
    try:
        urls = [s.ws_url for s in servers]
        with common.Workers(generator_main, [(i,) for i in range(GENERATORS)]) as workers:
            clients = [[_client(uid, urls[srv], conv_of[uid]) for uid, srv in c] for c in chunks]
            t0 = time.monotonic()
            workers.ask(None, per_worker=[("connect", c, 100) for c in clients], timeout=300)
            connect_seconds = time.monotonic() - t0
            print(f"  {label}: {clients_n} clients connected in {connect_seconds:.1f} s")
            warm = {**mode, "seconds": mode["warmup_seconds"]}
            _step(workers, chunks, others, gen_of, 0, 200, warm, servers, f"{label} warm-up")
            steps = []
            for i, rate in enumerate(rates, start=1):
                row = _step(workers, chunks, others, gen_of, i, rate, mode, servers, label)
                steps.append(row)
                print(
                    f"  {label} {rate:>5}/s: achieved {row['achieved']:.0f}/s p99 "
                    f"{row['p99']} ms missing {row['missing']} dup {row['duplicated']}",
                    flush=True,
                )
                if row["achieved"] < SATURATED_SHARE * rate:
                    for skipped in rates[i:]:
                        steps.append({"run": label, "offered": skipped, "skipped": "saturated"})
                    break
            _reconcile_late(workers, [s for s in steps if "step" in s], mode["collect_max"])
            workers.ask(("close",), timeout=120)
    finally:
        for s in servers:
            s.stop()
    return {"connect_seconds": round(connect_seconds, 2), "steps": steps}


def _held(steps: list[dict]) -> int:
    """The highest offered rate achieved (>= 97 %) at p99 under ``HELD_P99_MS``."""
    return max(
        (
            s["offered"]
            for s in steps
            if not s.get("skipped")
            and s.get("p99") is not None
            and s["p99"] < HELD_P99_MS
            and s["achieved"] >= 0.97 * s["offered"]
        ),
        default=0,
    )


def _switchboard(results_dir: Path) -> dict:
    """Switchboard's 1:1 messaging steps: this run's if it has them, else the docs'."""
    path = results_dir / "messaging.json"
    if path.exists():
        with open(path) as f:
            data = json.load(f)
        steps = [s for s in data["runs"]["direct"]["steps"] if not s.get("skipped")]
        return {"source": f"this run ({path.name}, quick={data.get('quick')})", "steps": steps}
    return SWITCHBOARD_DOC


def _message_path_targets(results_dir: Path, relay: dict, relay_group: list[dict]) -> list[dict]:
    """The message path's targets (issue #13), judged against the relay of this run (its 1:1
    run, and its groups of 10 for the groups target): only when ``messaging`` ran in the
    same run (its ``messaging.json``)."""
    path = results_dir / "messaging.json"
    if not path.exists():
        return []
    with open(path) as f:
        data = json.load(f)
    direct = [s for s in data["runs"]["direct"]["steps"] if not s.get("skipped")]
    group = [s for s in data["runs"].get("group", {}).get("steps", []) if not s.get("skipped")]
    relay_best = relay["reference_max_achieved"] or 0
    relay_held = relay["reference_held_p99_50ms"] or 0
    best = max((s["achieved"] for s in direct), default=0)
    held = _held(direct)
    at_250 = next((s["p99"] for s in direct if s["offered"] == 250), None)
    group_best = max((s["achieved"] for s in group), default=0)
    relay_group_best = max((s["achieved"] for s in relay_group if not s.get("skipped")), default=0)
    return [
        {
            "name": f"1:1 best persisted rate vs the relay's best ({relay_best}/s)",
            "target": f">= 0.5 x relay = {relay_best / 2:.0f}/s",
            "measured": f"{best}/s ({_ratio(best, relay_best)} x)",
            "met": best >= relay_best / 2,
        },
        {
            "name": f"1:1 highest rate held at p99 < {HELD_P99_MS:.0f} ms vs the relay's "
            f"({relay_held}/s)",
            "target": f">= 0.5 x relay = {relay_held / 2:.0f}/s",
            "measured": f"{held}/s",
            "met": held >= relay_held / 2,
        },
        {
            "name": "1:1 p99 at 250 messages/s",
            "target": "< 25 ms",
            "measured": at_250,
            "met": at_250 is not None and at_250 < 25,
        },
        {
            "name": "groups of 10: best rate (messages) vs the relay's best on the same groups "
            f"({relay_group_best}/s; its 1:1 best: {relay_best}/s)",
            "target": f">= 0.5 x relay = {relay_group_best / 2:.0f}/s",
            "measured": f"{group_best}/s ({_ratio(group_best, relay_group_best)} x; "
            f"{_ratio(group_best, relay_best)} x of its 1:1)",
            "met": group_best >= relay_group_best / 2,
        },
    ]


def _ratio(a, b) -> float | None:
    return None if a in (None, 0) or b in (None, 0) else round(a / b, 3)


def _compare(sb: dict, ref: list[dict], name: str) -> dict:
    """Switchboard against one reference design: best rate, held rate, p99 at a shared rate."""
    ran = [s for s in ref if not s.get("skipped")]
    ref_max = max((s["achieved"] for s in ran), default=None)
    sb_max = max((s["achieved"] for s in sb["steps"]), default=None)
    ref_at = {s["offered"]: s for s in ran}
    at = min((s["offered"] for s in sb["steps"] if s["offered"] in ref_at), default=None)
    sb_at = next((s for s in sb["steps"] if s["offered"] == at), None)
    ref_p99 = ref_at[at]["p99"] if at else None
    sb_p99 = sb_at["p99"] if sb_at else None
    return {
        "against": name,
        "reference_max_achieved": ref_max,
        "switchboard_max_achieved": sb_max,
        "throughput_ratio": _ratio(sb_max, ref_max),
        "reference_held_p99_50ms": _held(ran),
        "switchboard_held_p99_50ms": _held(sb["steps"]),
        "at_rate": at,
        "reference_p99_at_rate": ref_p99,
        "switchboard_p99_at_rate": sb_p99,
        "p99_ratio_at_rate": _ratio(sb_p99, ref_p99),
    }


COLUMNS = [
    ("run", "run", ""),
    ("offered", "offered/s", ""),
    ("achieved", "achieved/s", ".0f"),
    ("deliveries", "deliveries", ""),
    ("late", "late", ""),
    ("lost", "lost", ""),
    ("duplicated", "dup", ""),
    ("p50", "p50 ms", ".1f"),
    ("p95", "p95 ms", ".1f"),
    ("p99", "p99 ms", ".1f"),
    ("ack_p99", "ack p99 ms", ".1f"),
    ("server_cores", "server cores", ".2f"),
    ("server_cpu_ms_per_msg", "server CPU ms/msg", ".3f"),
    ("generator_cores", "gen cores", ".2f"),
    ("machine_cores", "machine cores", ".2f"),
    ("skipped", "note", ""),
]


def run(*, quick: bool, results_dir: Path) -> dict:
    common.setup(results_dir)
    mode = QUICK if quick else FULL
    runs = {name: _run(name, mode["rates"][name], mode, results_dir) for name in RUNS}
    print(common.table([s for r in runs.values() for s in r["steps"]], COLUMNS))
    sb = _switchboard(results_dir)
    print(f"  Switchboard 1:1 from {sb['source']}")
    comparisons = {v: _compare(sb, runs[v]["steps"], VARIANTS[v][1]) for v in VARIANTS}
    for c in comparisons.values():
        print(
            f"  vs {c['against']}: best {c['switchboard_max_achieved']}/s vs "
            f"{c['reference_max_achieved']}/s = {c['throughput_ratio']}; held at p99 < "
            f"{HELD_P99_MS:.0f} ms: {c['switchboard_held_p99_50ms']}/s vs "
            f"{c['reference_held_p99_50ms']}/s; p99 at {c['at_rate']}/s: "
            f"{c['switchboard_p99_at_rate']} ms vs {c['reference_p99_at_rate']} ms"
        )
    lost = {v: sum(s.get("lost", 0) for s in r["steps"]) for v, r in runs.items()}
    dup = {v: sum(s.get("duplicated", 0) for s in r["steps"]) for v, r in runs.items()}
    for v in VARIANTS:
        comparisons[v]["reference_lost"] = lost[v]
        comparisons[v]["reference_duplicated"] = dup[v]
    for name in RUNS:
        print(f"  {RUNS[name][2]}: lost {lost[name]}, duplicated {dup[name]}")
    # The references have no target of their own: they are the yardstick. Only the limit's
    # sanity is checked (a relay that loses messages would flatter nothing). The naive
    # design's losses are a finding (the core layer drops events to full channels).
    targets = [
        {
            "name": "bare relay: messages lost / duplicated (sanity of the yardstick)",
            "target": "0 / 0",
            "measured": f"{lost['relay'] + lost['relay_group']} / "
            f"{dup['relay'] + dup['relay_group']}",
            "met": not (lost["relay"] or dup["relay"] or lost["relay_group"] or dup["relay_group"]),
        }
    ]
    targets += _message_path_targets(
        results_dir, comparisons["relay"], runs["relay_group"]["steps"]
    )
    result = {
        "scenario": "baseline",
        "quick": quick,
        "clients": mode["clients"],
        "generators": GENERATORS,
        "step_seconds": mode["seconds"],
        "machine_load": common.machine_load(0.5),
        "runs": runs,
        "switchboard": sb,
        "comparisons": comparisons,
        "targets": targets,
    }
    common.write_json(results_dir / "baseline.json", result)
    _plot(results_dir / "baseline.png", runs, sb)
    return result


def _plot(path: Path, runs: dict, sb: dict) -> None:
    def series(steps, key):
        done = [s for s in steps if not s.get("skipped") and s.get(key) is not None]
        return [s["offered"] for s in done], [s[key] for s in done]

    achieved = {RUNS[v][2]: series(r["steps"], "achieved") for v, r in runs.items()}
    p99 = {f"{RUNS[v][2]} p99": series(r["steps"], "p99") for v, r in runs.items()}
    common.plot(
        path,
        title="1,000 clients, two processes: the relay (1:1, groups of 10), naive, Switchboard 1:1",
        xlabel="offered messages/s",
        panels=[
            {
                "ylabel": "achieved messages/s",
                "diagonal": True,
                "series": {**achieved, "Switchboard": series(sb["steps"], "achieved")},
            },
            {
                "ylabel": "send -> receipt p99, ms (log)",
                "logy": True,
                "hlines": {"50 ms": HELD_P99_MS},
                "series": {**p99, "Switchboard p99": series(sb["steps"], "p99")},
            },
        ],
    )


if __name__ == "__main__":
    common.scenario_main(run)
