"""A private PostgreSQL for tests that stop the database (the shared one is never stopped).

``PostgresServer`` runs ``initdb`` into a temporary directory and ``pg_ctl`` on a spare
loopback port, as the ``postgres`` user when the tests run as root (PostgreSQL refuses to run
as root). ``stop`` and ``start`` make an outage and its end; ``destroy`` stops it and removes
its files. Trust authentication on loopback only: it holds nothing but a test's rows.
"""

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from switchboard.embedded_redis import free_port
from tests.conftest import ROOT, process_env

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
START_TIMEOUT_SECONDS = 60


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(d / name) for d in PG_BIN_DIRS if (d / name).exists()), None
    )
    if found is None:
        raise RuntimeError(f"{name} not found (PostgreSQL server binaries)")
    return found


class PostgresServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="sbtest-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)

    def url(self, db: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        subprocess.run([*prefix, *command], check=True, stdout=subprocess.DEVNULL, timeout=120)

    def init(self) -> "PostgresServer":
        self._run(
            _binary("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        return self

    def start(self) -> "PostgresServer":
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c max_connections=30"
        )
        self._run(
            _binary("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", str(START_TIMEOUT_SECONDS), "start",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        """Stop the server (fast: it closes every connection at once)."""
        if (self.data / "postmaster.pid").exists():
            self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def migrate(self) -> None:
        """Create Switchboard's tables in the ``postgres`` database."""
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=process_env(DATABASE_URL=self.url()),
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=300,
        )

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A migrated private PostgreSQL for the block; stopped and removed afterwards."""
    server = PostgresServer()
    try:
        server.init().start().migrate()
        yield server
    finally:
        server.destroy()
