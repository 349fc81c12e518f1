"""Real Celery worker and beat processes for tests (tests/live, tests/ops).

They run ``celery -A switchboard worker|beat`` on loopback with this run's database and Redis
prefix (``tests.conftest.process_env``, as the server processes do). Each starts in its own
process group (``switchboard.servers.ManagedProcess`` with ``own_group``), so a test can make a
worker vanish at once, children included (``kill``), and ``stop`` never leaves a prefork child
behind.
"""

import socket
import sys
import time
import uuid
from collections.abc import Callable

import pytest

from switchboard.servers import ManagedProcess
from tests.conftest import ARTIFACTS, process_env

START_TIMEOUT_SECONDS = 60
# A warm shutdown finishes the task at hand first.
STOP_TIMEOUT_SECONDS = 15


def _command(kind: str, name: str) -> list[str]:
    base = [sys.executable, "-m", "celery", "-A", "switchboard", kind]
    if kind == "worker":
        return [
            *base, "--loglevel", "INFO", "--pool", "prefork", "--concurrency", "1",
            "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
    # beat: no pid file (several beats in one test), wake up at least every second.
    return [*base, "--loglevel", "INFO", "--pidfile=", "--max-interval", "1"]


class CeleryProcess(ManagedProcess):
    def __init__(self, kind: str, env: dict[str, str]) -> None:
        self.kind = kind
        self.name = f"sbtest-{uuid.uuid4().hex[:8]}"
        super().__init__(
            label=f"celery {kind}",
            command=_command(kind, self.name),
            env=env,
            log=ARTIFACTS / f"celery-{kind}-{self.name}.log",
            own_group=True,
            start_timeout=START_TIMEOUT_SECONDS,
            stop_timeout=STOP_TIMEOUT_SECONDS,
        )

    def start(self, ready: Callable[["CeleryProcess"], bool]) -> "CeleryProcess":
        """Spawn the process and wait until ``ready(self)``; return it."""
        self.spawn()
        self.wait_until(lambda: ready(self))
        return self


def _worker_answers(worker: CeleryProcess) -> bool:
    from switchboard.celery import app

    node = f"{worker.name}@{socket.gethostname()}"
    return bool(app.control.ping(destination=[node], timeout=0.5))


def _beat_ticked_since(started: float):
    def ready(beat: CeleryProcess) -> bool:
        from ops.selectors import beat_age

        age = beat_age()
        return age is not None and time.time() - age >= started

    return ready


class Celery:
    """Starts workers and beats for one test (or module); ``stop_all`` ends them."""

    def __init__(self, env: dict):
        self.env = env
        self.started: list[CeleryProcess] = []

    def worker(self, **extra_env: str) -> CeleryProcess:
        proc = CeleryProcess("worker", {**self.env, **extra_env})
        self.started.append(proc)
        return proc.start(_worker_answers)

    def beat(self, **extra_env: str) -> CeleryProcess:
        started = time.time()
        proc = CeleryProcess("beat", {**self.env, **extra_env})
        self.started.append(proc)
        return proc.start(_beat_ticked_since(started))

    def stop_all(self) -> None:
        # Ask all at once, then wait: warm shutdowns overlap instead of adding up.
        for proc in self.started:
            proc.terminate()
        for proc in reversed(self.started):
            proc.stop()
        self.started.clear()


@pytest.fixture
def celery_procs(transactional_db):
    """Start real Celery workers / beats for one test: ``celery_procs.worker(**env)``."""
    procs = Celery(process_env())
    yield procs
    procs.stop_all()
