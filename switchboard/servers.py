"""Real processes on loopback for the tests and the benchmarks: uvicorn servers, and the base
the tests' Celery workers and beats share with them.

``ServerProcess`` is one uvicorn process serving an ASGI application (Switchboard's unless told
otherwise) on a free port; it is ready when ``/healthz`` answers 200. ``ManagedProcess`` is the
part every such child shares: output appended to a log file, a wait until a readiness check
passes (or the child exits), and an end by SIGTERM, then SIGKILL if it lingers.

Nothing here reads Django settings or imports an app: the caller passes the whole environment
and the uvicorn options (the tests' own, or the Procfile's for the bench). ``make run`` does not
use this module; honcho runs its processes from the Procfile.
"""

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self

from switchboard.embedded_redis import free_port

ROOT = Path(__file__).resolve().parent.parent
SWITCHBOARD_APP = "switchboard.asgi:application"
HOST = "127.0.0.1"
READY_POLL_SECONDS = 0.2
HEALTHZ_TIMEOUT_SECONDS = 2.0
# After SIGKILL the child is gone at once; the wait only reaps it.
KILL_WAIT_SECONDS = 10.0

# Loopback never goes through a proxy, whatever HTTP_PROXY / NO_PROXY say.
_loopback = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ManagedProcess:
    """A child process started in ``ROOT`` with stdout and stderr appended to ``log``.

    With ``own_group`` it starts a session of its own and every signal goes to its whole
    process group, so its children (a prefork pool) end with it.
    """

    def __init__(
        self,
        *,
        label: str,
        command: Sequence[str],
        env: Mapping[str, str],
        log: Path,
        own_group: bool = False,
        start_timeout: float = 60.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.label = label
        self.command = list(command)
        self.env = dict(env)
        self.log = log
        self.own_group = own_group
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.terminating = False

    def spawn(self) -> None:
        """Start the process (again, after it ended) without waiting for it to be ready."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.own_group,
            )
        self.terminating = False

    def wait_until(self, ready: Callable[[], bool]) -> None:
        """Return once ``ready()`` holds; raise if the process exits or ``start_timeout`` passes."""
        proc = self._started()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited; see {self.log}")
            if ready():
                return
            time.sleep(READY_POLL_SECONDS)
        raise RuntimeError(f"{self.label} did not start; see {self.log}")

    @property
    def pid(self) -> int:
        return self._started().pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        """Send SIGTERM once, without waiting: several processes then shut down side by side."""
        if self.running() and not self.terminating:
            self._signal(signal.SIGTERM)
            self.terminating = True

    def stop(self) -> None:
        """End the process: SIGTERM, then SIGKILL if it is still there after ``stop_timeout``."""
        if self.proc is None:
            return
        self.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(self.stop_timeout)
        if self.proc.poll() is None:
            self._signal(signal.SIGKILL)
            self.proc.wait(KILL_WAIT_SECONDS)

    def kill(self) -> None:
        """SIGKILL the process (with ``own_group``, its children too): gone without a goodbye."""
        if self.proc is None:
            return
        self._signal(signal.SIGKILL)
        self.proc.wait(KILL_WAIT_SECONDS)

    def _started(self) -> "subprocess.Popen[bytes]":
        if self.proc is None:
            raise RuntimeError(f"{self.label} was never started")
        return self.proc

    def _signal(self, sig: signal.Signals) -> None:
        proc = self._started()
        if self.own_group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)  # its own group (start_new_session)
        else:
            proc.send_signal(sig)  # a no-op once the process has been reaped


class ServerProcess(ManagedProcess):
    """One uvicorn process serving ``app`` on a free loopback port with uvicorn options ``args``.

    The port is chosen once: ``start`` after ``kill`` brings the server back where its clients
    expect it. The log is ``log_dir/server-<name>-<port>.log`` (``server-<port>.log`` unnamed).
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        log_dir: Path,
        args: Sequence[str],
        name: str = "",
        app: str = SWITCHBOARD_APP,
        start_timeout: float = 60.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.ws_url = f"ws://{HOST}:{self.port}/ws"
        stem = f"server-{name}-{self.port}" if name else f"server-{self.port}"
        command = [sys.executable, "-m", "uvicorn", app,
                   "--host", HOST, "--port", str(self.port), *args]  # fmt: skip
        super().__init__(
            label=f"server {name}" if name else "server",
            command=command,
            env=env,
            log=log_dir / f"{stem}.log",
            start_timeout=start_timeout,
            stop_timeout=stop_timeout,
        )

    def healthy(self) -> bool:
        """Return whether ``/healthz`` answers 200 right now."""
        try:
            with _loopback.open(self.url + "/healthz", timeout=HEALTHZ_TIMEOUT_SECONDS) as resp:
                return bool(resp.status == 200)
        except (OSError, http.client.HTTPException):  # not listening yet, or half up
            return False

    def wait_ready(self) -> None:
        """Return once ``/healthz`` answers; raise if the server exits or does not start."""
        self.wait_until(self.healthy)

    def start(self) -> Self:
        """Spawn the server and wait until it is ready; return it."""
        self.spawn()
        self.wait_ready()
        return self
