"""The Lua scripts of presence (``lua/*.lua``), loaded once per process, run by SHA.

``EVALSHA`` first; on ``NOSCRIPT`` (a restarted or new Redis) the script body is sent once
with ``EVAL``, which also caches it on the server again.
"""

import hashlib
from pathlib import Path

from redis.exceptions import NoScriptError

from switchboard.redis import abus, bus

_DIR = Path(__file__).resolve().parent / "lua"
_SOURCES: dict[str, tuple[str, str]] = {}


def _source(name: str) -> tuple[str, str]:
    found = _SOURCES.get(name)
    if found is None:
        text = (_DIR / f"{name}.lua").read_text()
        found = _SOURCES[name] = (text, hashlib.sha1(text.encode()).hexdigest())
    return found


def script_run(name: str, *, keys: list[str], args: list) -> object:
    """Run script ``name`` on the bus (synchronous callers)."""
    text, sha = _source(name)
    client = bus()
    try:
        return client.evalsha(sha, len(keys), *keys, *args)
    except NoScriptError:
        return client.eval(text, len(keys), *keys, *args)


async def script_arun(name: str, *, keys: list[str], args: list) -> object:
    """Run script ``name`` on the bus (async callers)."""
    text, sha = _source(name)
    client = abus()
    try:
        return await client.evalsha(sha, len(keys), *keys, *args)
    except NoScriptError:
        return await client.eval(text, len(keys), *keys, *args)
