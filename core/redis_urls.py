"""``REDIS_URL`` / ``CACHE_URL``: one Redis server or several (shards), direct or Sentinel.

The syntax (docs/deployment.md, "The bus: shards and Sentinel")::

    redis://host:6379/0                                   one server
    redis://h1:6379/0,redis://h2:6379/0                   two shards
    sentinel://s1:26379,s2:26379,s3:26379/bus1/0          one shard: Sentinel's master "bus1", db 0
    sentinel://s1:26379,s2:26379/bus1/0,sentinel://s1:26379,s2:26379/bus2/0   two of them

A comma followed by a scheme (``redis://``, ``rediss://``, ``unix://``, ``sentinel://``)
starts the next shard; any other comma separates the sentinels of one shard. A Sentinel URL's
``user:password@`` (before the first sentinel) is the data servers' credential. The order of
the shards is part of the configuration: every process of a deployment must list them in the
same order, since a key's server is found from its position (``core.redis.shard_index``).

Pure (no Django): ``switchboard/settings.py`` builds the channel layer's hosts, Celery's
broker URL and the cache's options from it, ``core/redis.py`` the bus clients.
"""

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

_SHARD_SPLIT = re.compile(r",(?=\s*(?:redis|rediss|unix|sentinel)://)")


@dataclass(frozen=True)
class Server:
    """One shard: a direct URL, or a Sentinel master (its sentinels, name and database)."""

    url: str = ""
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None

    @property
    def is_sentinel(self) -> bool:
        return bool(self.sentinels)

    def with_db(self, db: int) -> "Server":
        """The same server with database number ``db``."""
        if self.is_sentinel:
            return Server(
                sentinels=self.sentinels,
                master_name=self.master_name,
                db=db,
                username=self.username,
                password=self.password,
            )
        parts = urlsplit(self.url)
        return Server(url=parts._replace(path=f"/{db}").geturl(), db=db)

    def text(self) -> str:
        """This server as a URL of the syntax above."""
        if not self.is_sentinel:
            return self.url
        auth = ""
        if self.password is not None or self.username is not None:
            auth = f"{self.username or ''}:{self.password or ''}@"
        hosts = ",".join(f"{h}:{p}" for h, p in self.sentinels)
        return f"sentinel://{auth}{hosts}/{self.master_name}/{self.db}"


def parse(value: str, *, name: str = "REDIS_URL") -> list[Server]:
    """Return the shards ``value`` lists; ValueError naming ``name`` if it is malformed."""
    entries = [e.strip() for e in _SHARD_SPLIT.split(value.strip()) if e.strip()]
    if not entries:
        raise ValueError(f"{name} is empty")
    return [_parse_one(e, name) for e in entries]


def _parse_one(entry: str, name: str) -> Server:
    if not entry.startswith("sentinel://"):
        parts = urlsplit(entry)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                f"{name}: {entry!r} is not a redis://, rediss://, unix:// or sentinel:// URL"
            )
        try:
            db = int(parts.path.strip("/") or 0) if parts.scheme != "unix" else 0
        except ValueError:
            raise ValueError(f"{name}: {entry!r} has no valid database number") from None
        return Server(url=entry, db=db)
    rest = entry[len("sentinel://") :]
    username = password = None
    if "@" in rest.split("/", 1)[0]:
        auth, rest = rest.split("@", 1)
        user, _, secret = auth.partition(":")
        username, password = unquote(user) or None, unquote(secret) or None
    hosts, _, path = rest.partition("/")
    master_name, _, db_text = path.partition("/")
    if not master_name:
        raise ValueError(
            f"{name}: {entry!r} needs a master name: sentinel://host:port,.../<master>/<db>"
        )
    sentinels = []
    for host in hosts.split(","):
        address, _, port = host.strip().rpartition(":")
        if not address or not port.isdigit():
            raise ValueError(f"{name}: sentinel {host!r} of {entry!r} is not host:port")
        sentinels.append((address, int(port)))
    if db_text and not db_text.strip("/").isdigit():
        raise ValueError(f"{name}: {entry!r} has no valid database number")
    return Server(
        sentinels=tuple(sentinels),
        master_name=master_name,
        db=int(db_text.strip("/") or 0),
        username=username,
        password=password,
    )


def channel_layer_host(server: Server, **extra: Any) -> dict[str, Any]:
    """One entry of channels-redis' ``hosts`` (it opens a SentinelConnectionPool for a master)."""
    if not server.is_sentinel:
        return {"address": server.url, **extra}
    host: dict[str, Any] = {
        "master_name": server.master_name,
        "sentinels": [list(s) for s in server.sentinels],
        "db": server.db,
        **extra,
    }
    if server.password is not None:
        host["password"] = server.password
    if server.username is not None:
        host["username"] = server.username
    return host


def celery_broker(server: Server) -> tuple[str, dict[str, Any]]:
    """Celery's broker URL for ``server`` and the transport options it needs (kombu's form:
    ``sentinel://host:port/db;sentinel://...`` with ``master_name`` in the options)."""
    if not server.is_sentinel:
        return server.url, {}
    auth = f":{server.password}@" if server.password is not None else ""
    url = ";".join(f"sentinel://{auth}{h}:{p}/{server.db}" for h, p in server.sentinels)
    return url, {"master_name": server.master_name}
