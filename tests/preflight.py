"""Stop `make test` at once, with a clear message, when PostgreSQL or Redis is missing."""

import os
import socket
import sys
from urllib.parse import urlsplit

DEFAULTS = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
    "REDIS_URL": "redis://127.0.0.1:6379/14",
}


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return True
    except OSError:
        return False


def main() -> int:
    missing = []
    for name, default in DEFAULTS.items():
        url = os.environ.get(name) or default
        if not _reachable(url):
            missing.append(f"  {name}={url} is not reachable")
    if missing:
        print("make test needs a real PostgreSQL and a real Redis:", file=sys.stderr)
        print("\n".join(missing), file=sys.stderr)
        print(
            "Start them, or point the suite at yours, e.g.\n"
            "  DATABASE_URL=postgres://user@host:5432/db REDIS_URL=redis://host:6379/14 make test",
            file=sys.stderr,
        )
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
