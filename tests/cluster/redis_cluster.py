"""Real Redis topologies on loopback for the cluster tests: bus shards, and a Sentinel set.

``shards(n)`` starts ``n`` private redis-servers (``switchboard.embedded_redis.RedisServer``,
``noeviction`` as the bus wants). ``SentinelSet`` is one Sentinel-managed bus server as in
production: a primary, a replica and three ``redis-sentinel`` processes, each with its own
config file in a tmp dir (Sentinel rewrites it), on spare ports; ``stop`` ends every process
it started, whatever state the test left them in.

The Sentinel timings are the test's, chosen for a quick failover on loopback; production's
are in docs/deployment.md ("The bus: shards and Sentinel").
"""

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis
import redis.sentinel

from switchboard.embedded_redis import RedisServer, free_port

BUS_ARGS = ("--maxmemory-policy", "noeviction")
# A replica's first sync over the socket, at once (Redis 7 waits 5 s by default for more
# replicas to share a disk-less sync).
REPLICA_ARGS = ("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")
QUORUM = 2
# The test's Sentinel timings (production: 5000 / 60000, docs/deployment.md).
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
READY_TIMEOUT_SECONDS = 30


@contextlib.contextmanager
def shards(n: int) -> Iterator[list[RedisServer]]:
    """Run ``n`` private bus servers until the block ends."""
    started: list[RedisServer] = []
    try:
        for _ in range(n):
            started.append(RedisServer(extra_args=BUS_ARGS).start())
        yield started
    finally:
        for server in started:
            server.kill()


def shards_url(servers: list[RedisServer], db: int = 0) -> str:
    """``REDIS_URL`` naming ``servers`` as the bus' shards, in order."""
    return ",".join(s.url(db) for s in servers)


def _wait(check, what: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} within {timeout} s")
        time.sleep(0.1)


class SentinelSet:
    """A primary, a replica and three sentinels monitoring them as ``master_name``."""

    def __init__(self, directory: Path, master_name: str = "bus1") -> None:
        self.directory = directory
        self.master_name = master_name
        # Their files (a replica writes the RDB of its full sync) in the tmp dir, never in
        # the working directory, where a later redis-server would try to load it.
        files = ("--dir", str(directory))
        self.primary = RedisServer(extra_args=(*BUS_ARGS, *REPLICA_ARGS, *files))
        self.replica = RedisServer(
            extra_args=(
                *BUS_ARGS,
                *REPLICA_ARGS,
                *files,
                "--replicaof",
                "127.0.0.1",
                str(self.primary.port),
            )
        )
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    def url(self, db: int = 0) -> str:
        """``REDIS_URL`` of this one Sentinel-managed server (core/redis_urls.py)."""
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"sentinel://{hosts}/{self.master_name}/{db}"

    def _config(self, port: int) -> Path:
        path = self.directory / f"sentinel-{port}.conf"
        name = self.master_name
        path.write_text(
            "\n".join(
                [
                    f"port {port}",
                    "bind 127.0.0.1",
                    "daemonize no",
                    f'dir "{self.directory}"',
                    "sentinel resolve-hostnames no",
                    f"sentinel monitor {name} 127.0.0.1 {self.primary.port} {QUORUM}",
                    f"sentinel down-after-milliseconds {name} {DOWN_AFTER_MS}",
                    f"sentinel failover-timeout {name} {FAILOVER_TIMEOUT_MS}",
                    f"sentinel parallel-syncs {name} 1",
                    "",
                ]
            )
        )
        return path

    def start(self) -> "SentinelSet":
        """Start everything; return once the replica is in sync and each sentinel knows the
        replica and the two other sentinels (a failover can then be agreed)."""
        self.primary.start()
        self.replica.start()
        replica = redis.Redis(port=self.replica.port, decode_responses=True)
        _wait(
            lambda: replica.info("replication").get("master_link_status") == "up",
            "the replica did not sync",
        )
        replica.close()
        for port in self.sentinel_ports:
            log = open(self.directory / f"sentinel-{port}.log", "ab")  # noqa: SIM115
            self.sentinels.append(
                subprocess.Popen(
                    ["redis-sentinel", str(self._config(port))], stdout=log, stderr=log
                )
            )
            log.close()
        for port in self.sentinel_ports:
            client = redis.Redis(port=port, decode_responses=True)
            _wait(
                lambda c=client: (
                    (m := self._master_state(c))["num-other-sentinels"] == "2"
                    and m["num-slaves"] == "1"
                ),
                f"sentinel {port} did not see its peers and the replica",
            )
            client.close()
        return self

    def _master_state(self, client: redis.Redis) -> dict[str, str]:
        # SENTINEL MASTER as the raw flat reply (redis-py 6.4's parser of it fails).
        flat = client.execute_command("SENTINEL", "MASTER", self.master_name)
        return dict(zip(flat[::2], flat[1::2], strict=True))

    def master_port(self) -> int:
        """The port of the primary as the sentinels tell it now."""
        client = redis.Redis(port=self.sentinel_ports[0], decode_responses=True)
        try:
            _, port = client.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name
            )
            return int(port)
        finally:
            client.close()

    def master(self) -> redis.Redis:
        """A client of whichever server is the primary (found through the sentinels)."""
        manager = redis.sentinel.Sentinel(
            [("127.0.0.1", p) for p in self.sentinel_ports],
            sentinel_kwargs={"socket_timeout": 1},
            socket_timeout=2,
        )
        return manager.master_for(self.master_name, decode_responses=True)

    def stop(self) -> None:
        for proc in self.sentinels:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self.replica.kill()
        self.primary.kill()


@contextlib.contextmanager
def sentinel_set(directory: Path, master_name: str = "bus1") -> Iterator[SentinelSet]:
    """A started ``SentinelSet`` until the block ends (stopped even if it failed to start)."""
    group = SentinelSet(directory, master_name)
    try:
        yield group.start()
    finally:
        group.stop()
