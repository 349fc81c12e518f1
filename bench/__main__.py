"""``python -m bench [--quick] [scenario ...]``: run benchmark scenarios, print and save results.

Every module in ``bench/scenarios`` is a scenario; with no names given, all run. Results go
to ``bench-results/<timestamp>/``: ``machine.json`` (cores, memory, commit, settings),
``<scenario>.json`` and ``<scenario>.png`` per scenario, and ``summary.json`` (each
scenario's targets and, where it measures them, its costs per message and per user:
bench/costs.py).
"""

import argparse
import importlib
import pkgutil
import sys
import time
import traceback

from bench import common, costs, scenarios

# Scenarios that run first when all run; the rest follow in alphabetical order.
# The relay runs right after messaging: the ratios compare runs minutes apart, not half an hour.
ORDER = ["messaging", "baseline", "connections"]


def scenario_names() -> list[str]:
    """Return every scenario module in bench/scenarios, in running order."""
    found = sorted(m.name for m in pkgutil.iter_modules(scenarios.__path__) if not m.ispkg)
    found = [n for n in found if not n.startswith("_")]
    return [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]


def _targets_line(result: dict) -> str:
    targets = result.get("targets") or []
    if not targets:
        return "-"
    met = sum(1 for t in targets if t.get("met"))
    return f"{met}/{len(targets)} met"


def main(argv: list[str] | None = None) -> int:
    available = scenario_names()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run (whole suite < 3 min)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("scenario", nargs="*", help=f"scenarios to run (default all: {available})")
    opts = parser.parse_args(argv)
    if opts.list:
        print("\n".join(available))
        return 0
    unknown = [n for n in opts.scenario if n not in available]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; available: {available}")
    names = opts.scenario or available

    results_dir = common.results_dir_new()
    print(f"bench: {'quick' if opts.quick else 'full'} run of {', '.join(names)}")
    print(f"bench: results in {results_dir}")
    suite_start = time.monotonic()
    common.setup(results_dir)
    machine = common.machine_info()
    common.write_json(
        results_dir / "machine.json",
        {
            "machine": machine,
            "settings": common.settings_info(),
            "quick": opts.quick,
            "scenarios": names,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    print(
        f"bench: {machine['cores']} cores, {machine['memory_gb']} GB, commit "
        f"{machine['commit'][:12]}{' (dirty)' if machine['commit_dirty'] else ''}, "
        f"load {machine['load']['loadavg']}"
    )
    summary = []
    try:
        for name in names:
            print(f"\n=== {name} ===", flush=True)
            start = time.monotonic()
            entry = {"scenario": name}
            try:
                module = importlib.import_module(f"bench.scenarios.{name}")
                result = module.run(quick=opts.quick, results_dir=results_dir) or {}
                out = results_dir / f"{name}.json"
                if not out.exists():
                    common.write_json(out, result)
                entry.update(
                    status="ok",
                    targets=_targets_line(result),
                    target_list=result.get("targets", []),
                    costs=result.get("cost_summary", {}),
                )
            except Exception as exc:
                traceback.print_exc()
                entry.update(status=f"failed: {exc!r}"[:200], targets="-")
            entry["seconds"] = round(time.monotonic() - start, 1)
            summary.append(entry)
    finally:
        common.teardown()
    total = round(time.monotonic() - suite_start, 1)
    common.write_json(results_dir / "summary.json", {"seconds": total, "scenarios": summary})
    print("\n=== summary ===")
    print(
        common.table(
            summary,
            [
                ("scenario", "scenario", ""),
                ("status", "status", ""),
                ("targets", "targets", ""),
                ("seconds", "seconds", ".1f"),
            ],
        )
    )
    for entry in summary:
        for t in entry.get("target_list", []):
            mark = "met" if t.get("met") else "MISSED"
            print(
                f"  {entry['scenario']}: {t.get('name')}: {t.get('measured')} "
                f"(target {t.get('target')}) {mark}"
            )
    for entry in summary:
        for name, unit in entry.get("costs", {}).items():
            print(costs.report(f"{entry['scenario']}: {name}", unit))
    print(f"bench: {total} s; results in {results_dir}")
    return 0 if all(e["status"] == "ok" for e in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
