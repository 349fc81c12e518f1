"""`make bench` keeps working: the scenarios that call into the apps' internals (Meet's pool
script, presence's scripts) run in quick mode without failing. Targets are not judged here
(benchmarks judge them); a renamed function or module would otherwise go unseen until the
next benchmark run."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_quick_matching_and_presence_scenarios_run():
    res = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "matching", "presence"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    found = re.findall(r"results in (\S+)", res.stdout)
    assert found, res.stdout[-2000:]
    summary = json.loads((Path(found[-1]) / "summary.json").read_text())
    statuses = {s["scenario"]: s["status"] for s in summary["scenarios"]}
    assert statuses == {"matching": "ok", "presence": "ok"}, summary
