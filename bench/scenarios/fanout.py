"""Fan-out: one message to a 1,000-member group, repeated; time until the last member has it.

One group of 1,000 members (issue #8). The sender (the group's owner) is a client of its own
load-generator process; the other 999 members are dealt alternately to the two server
processes and spread over three more generator processes, so every send crosses processes
through the channel layer and both servers push to ~500 sockets each.

Each send is one ``message.send`` whose body carries the send time (``CLOCK_MONOTONIC`` is
one clock for all processes). The next send waits for the reply and then a fixed gap, so
sends do not overlap: each is timed alone. Per send, the **last-member time** is the latest
receipt among the 999 recipients minus the send time; the target is on its p99 over all
sends. Loss is exact: every (recipient, send) pair is looked for among the receipts.

The generator is the one of the ``messaging`` scenario (real clients: token, ``hello``,
``sync``; a client the server drops reconnects and resumes with ``sync``).

Target: last member has it within 100 ms at p99.
"""

import time
from pathlib import Path

import psutil

from bench import common
from bench.scenarios.messaging import generator_main

MEMBERS = 1000
RECEIVERS = 3  # generator processes holding the 999 recipients
TARGET_P99_MS = 100.0
FULL = {"members": MEMBERS, "sends": 100, "gap": 0.5, "collect_max": 30.0, "profile": True}
# Quick (the whole quick suite must finish in under 3 minutes): a smaller group; the target
# is judged on the full run's 1,000 members.
QUICK = {"members": 300, "sends": 10, "gap": 0.25, "collect_max": 10.0, "profile": False}
WARMUP_SENDS = 3
# Warm-up sends are numbered from here, so their receipts never mix with measured ones.
WARMUP_STEP = 10_000


def _fixtures(members: int) -> tuple[int, tuple, list[tuple]]:
    """Create the users and the group; return its id, the sender and the recipients."""
    users = common.users_create(count=members, prefix="fanout")
    (cid,) = common.conversations_group_create([[u for u, _ in users]], title="fanout")
    # (uid, token, server index); member i goes to server i % 2.
    specs = [(uid, token, i % 2) for i, (uid, token) in enumerate(users)]
    return cid, specs[0], specs[1:]


def _send(sender, step: int, ack_wait: float) -> dict:
    """One message from the sender; return its reply time (ms) and whether it was acked."""
    (reply,) = sender.ask(("step", step, 1.0, 1.0, ack_wait), timeout=ack_wait + 60)
    return reply


def _collect(receivers, chunks, step: int, max_wait: float) -> dict:
    """Gather the receipts of one send from every receiver generator."""
    replies = receivers.ask(
        None,
        per_worker=[("collect", step, len(chunk), max_wait) for chunk in chunks],
        timeout=max_wait + 60,
    )
    expected = [(uid, step) for chunk in chunks for uid, _tok, _srv in chunk]
    received = [(uid, step) for r in replies for uid, _cid, _seq in r["receipts"]]
    latencies = [x for r in replies for x in r["latency_ms"]]
    disconnects: dict[str, int] = {}
    for r in replies:
        for why, k in r["disconnects"].items():
            disconnects[why] = disconnects.get(why, 0) + k
    return {
        "check": common.deliveries_compare(expected, received),
        "latency_ms": latencies,
        "disconnects": disconnects,
    }


def _run(mode: dict, results_dir: Path) -> dict:
    cid, sender_spec, recipients = _fixtures(mode["members"])
    chunks = common.split(recipients, RECEIVERS)
    with common.servers(2, results_dir=results_dir) as servers:
        urls = [s.ws_url for s in servers]

        def client(spec):
            uid, tok, srv = spec
            return (uid, tok, urls[srv], cid, [cid])

        with (
            common.Workers(generator_main, [(i,) for i in range(RECEIVERS)]) as receivers,
            common.Workers(generator_main, [(RECEIVERS,)]) as sender,
        ):
            t0 = time.monotonic()
            receivers.ask(
                None,
                per_worker=[("connect", [client(s) for s in chunk], 100) for chunk in chunks],
                timeout=600,
            )
            sender.ask(("connect", [client(sender_spec)], 1), timeout=120)
            connect_seconds = time.monotonic() - t0
            print(f"  fanout: {mode['members']} members connected in {connect_seconds:.1f} s")
            for i in range(WARMUP_SENDS):
                _send(sender, WARMUP_STEP + i, 10.0)
                _collect(receivers, chunks, WARMUP_STEP + i, mode["collect_max"])
                time.sleep(mode["gap"])

            spy = raw = None
            if mode["profile"] and common.py_spy_available():
                raw = results_dir / "fanout-server-a.pyspy.txt"
                seconds = mode["sends"] * (mode["gap"] + 0.05)
                spy = common.py_spy_record(servers[0].pid, seconds, raw)
            meter = common.CpuMeter([s.process for s in servers]).start()
            gen_meter = common.CpuMeter(
                [psutil.Process(p) for p in receivers.pids + sender.pids]
            ).start()
            sends = []
            with common.progress(mode["sends"], "fanout sends", unit="sends") as bar:
                for step in range(1, mode["sends"] + 1):
                    reply = _send(sender, step, 10.0)
                    sends.append({"step": step, "acked": reply["acked"], "ack_ms": reply["ack_ms"]})
                    time.sleep(mode["gap"])
                    bar.update(1)
            cpu = meter.stop()
            gen_cpu = gen_meter.stop()
            rows = []
            lost = duplicated = 0
            all_latencies: list[float] = []
            disconnects: dict[str, int] = {}
            for s in sends:
                got = _collect(receivers, chunks, s["step"], mode["collect_max"])
                lat = got["latency_ms"]
                all_latencies += lat
                lost += got["check"]["lost"]
                duplicated += got["check"]["duplicated"]
                for why, k in got["disconnects"].items():
                    disconnects[why] = disconnects.get(why, 0) + k
                summary = common.latency_summary(lat)
                rows.append(
                    {
                        "send": s["step"],
                        "acked": bool(s["acked"]),
                        "ack_ms": round(s["ack_ms"][0], 2) if s["ack_ms"] else None,
                        "received": got["check"]["received"],
                        "lost": got["check"]["lost"],
                        "duplicated": got["check"]["duplicated"],
                        "member_p50_ms": summary["p50"],
                        "last_member_ms": summary["max"],
                    }
                )
            profile = common.py_spy_collect(spy, raw)
            receivers.ask(("close",), timeout=120)
            sender.ask(("close",), timeout=120)
    window = mode["sends"] * mode["gap"]
    return {
        "connect_seconds": round(connect_seconds, 2),
        "sends": rows,
        "lost": lost,
        "duplicated": duplicated,
        "disconnects": disconnects,
        "last_member": common.latency_summary(
            [r["last_member_ms"] for r in rows if r["last_member_ms"] is not None]
        ),
        "every_member": common.latency_summary(all_latencies),
        "ack": common.latency_summary([r["ack_ms"] for r in rows if r["ack_ms"] is not None]),
        "server_cores": cpu["total"],
        "server_cpu_ms_per_send": round(cpu["total"] * window * 1000 / max(len(rows), 1), 1),
        "generator_cores": gen_cpu["total"],
        "machine_cores": cpu["machine"],
        "profile": profile,
    }


COLUMNS = [
    ("what", "latency", ""),
    ("count", "count", ""),
    ("mean", "mean ms", ".1f"),
    ("p50", "p50 ms", ".1f"),
    ("p95", "p95 ms", ".1f"),
    ("p99", "p99 ms", ".1f"),
    ("max", "max ms", ".1f"),
]


def run(*, quick: bool, results_dir: Path) -> dict:
    common.setup(results_dir)
    mode = QUICK if quick else FULL
    res = _run(mode, results_dir)
    rows = [
        {"what": "last member (per send)", **res["last_member"]},
        {"what": "every member (per delivery)", **res["every_member"]},
        {"what": "sender's reply", **res["ack"]},
    ]
    print(common.table(rows, COLUMNS))
    print(
        f"  lost {res['lost']}, duplicated {res['duplicated']}, server cores "
        f"{res['server_cores']:.2f} ({res['server_cpu_ms_per_send']} ms CPU per send), "
        f"generator cores {res['generator_cores']:.2f}, machine {res['machine_cores']:.2f}"
    )
    p99 = res["last_member"]["p99"]
    acked = sum(1 for r in res["sends"] if r["acked"])
    targets = [
        {
            "name": f"fan-out to {mode['members']:,} members: last member p99",
            "target": f"< {TARGET_P99_MS:.0f} ms",
            "measured": f"{p99} ms (p50 {res['last_member']['p50']} ms, {acked} sends)",
            "met": p99 is not None and p99 < TARGET_P99_MS and acked == len(res["sends"]),
        },
        {
            "name": "fan-out deliveries lost / duplicated",
            "target": "0 / 0",
            "measured": f"{res['lost']} / {res['duplicated']}",
            "met": res["lost"] == 0 and res["duplicated"] == 0,
        },
    ]
    result = {
        "scenario": "fanout",
        "quick": quick,
        "members": mode["members"],
        "sends": mode["sends"],
        "gap_seconds": mode["gap"],
        "machine_load": common.machine_load(0.5),
        **res,
        "targets": targets,
    }
    common.write_json(results_dir / "fanout.json", result)
    _plot(results_dir / "fanout.png", res["sends"], mode["members"])
    for t in targets:
        print(f"  target {t['name']}: {t['measured']} -> {'met' if t['met'] else 'MISSED'}")
    return result


def _plot(path: Path, sends: list[dict], members: int) -> None:
    xs = [r["send"] for r in sends]
    by_rank = sorted(r["last_member_ms"] for r in sends if r["last_member_ms"] is not None)
    common.plot(
        path,
        title=f"fan-out: one message to a {members:,}-member group, two server processes",
        xlabel="send # (left) / rank of send by last-member time (right)",
        panels=[
            {
                "ylabel": "ms after the send",
                "hlines": {"target p99 100 ms": TARGET_P99_MS},
                "series": {
                    "last member": (xs, [r["last_member_ms"] for r in sends]),
                    "median member": (xs, [r["member_p50_ms"] for r in sends]),
                    "sender's reply": (xs, [r["ack_ms"] for r in sends]),
                },
            },
            {
                "ylabel": "last-member time, ms (sorted)",
                "hlines": {"target p99 100 ms": TARGET_P99_MS},
                "series": {"last member": (list(range(1, len(by_rank) + 1)), by_rank)},
            },
        ],
    )


if __name__ == "__main__":
    common.scenario_main(run)
