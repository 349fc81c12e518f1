"""Real Celery worker and beat processes for tests (tests/live, tests/ops).

They run ``celery -A switchboard worker|beat`` on loopback with this run's database and Redis
prefix (the same environment as ``tests.conftest.ServerProcess``). Each starts in its own
process group, so a test can make a worker vanish at once, children included (``kill``),
and ``stop`` never leaves a prefork child behind.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import ROOT, process_env

START_TIMEOUT_SECONDS = 60


class CeleryProcess:
    def __init__(self, kind: str, env: dict):
        self.kind = kind
        self.env = env
        self.name = f"sbtest-{uuid.uuid4().hex[:8]}"
        self.log = ROOT / "test-artifacts" / f"celery-{kind}-{self.name}.log"
        self.proc: subprocess.Popen | None = None
        self.terminating = False

    def command(self) -> list[str]:
        base = [sys.executable, "-m", "celery", "-A", "switchboard", self.kind]
        if self.kind == "worker":
            return [
                *base, "--loglevel", "INFO", "--pool", "prefork", "--concurrency", "1",
                "-n", f"{self.name}@%h", "--without-gossip", "--without-mingle",
                "--without-heartbeat",
            ]  # fmt: skip
        # beat: no pid file (several beats in one test), wake up at least every second.
        return [*base, "--loglevel", "INFO", "--pidfile=", "--max-interval", "1"]

    def start(self) -> "CeleryProcess":
        self.log.parent.mkdir(exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, ready) -> "CeleryProcess":
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery {self.kind} exited; see {self.log}")
            if ready(self):
                return self
            time.sleep(0.2)
        raise RuntimeError(f"celery {self.kind} did not start; see {self.log}")

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)  # our own process group (start_new_session)

    def kill(self) -> None:
        """SIGKILL the process and its children: gone without a goodbye."""
        if self.proc is not None:
            self._signal_group(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if not self.terminating:
                self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        if self.proc.poll() is None:  # still there: its whole group goes, children too
            self._signal_group(signal.SIGKILL)
            self.proc.wait(10)


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
        proc = CeleryProcess("worker", {**self.env, **extra_env}).start()
        self.started.append(proc)
        return proc.wait_ready(_worker_answers)

    def beat(self, **extra_env: str) -> CeleryProcess:
        started = time.time()
        proc = CeleryProcess("beat", {**self.env, **extra_env}).start()
        self.started.append(proc)
        return proc.wait_ready(_beat_ticked_since(started))

    def stop_all(self) -> None:
        # Ask all at once, then wait: warm shutdowns overlap instead of adding up.
        for proc in self.started:
            if proc.proc is not None and proc.proc.poll() is None:
                proc._signal_group(signal.SIGTERM)
                proc.terminating = True
        for proc in reversed(self.started):
            proc.stop()
        self.started.clear()


@pytest.fixture
def celery_procs(transactional_db):
    """Start real Celery workers / beats for one test: ``celery_procs.worker(**env)``."""
    procs = Celery(process_env())
    yield procs
    procs.stop_all()
