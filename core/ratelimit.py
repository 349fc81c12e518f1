"""Rate limits: a token bucket in memory (per connection) and fixed windows in Redis.

- ``TokenBucket``: frames a WebSocket may send per second with a burst (the gateway), typing
  events per connection (presence). Lives in the connection's process, costs no I/O.
- ``window_take``: a counter per name and window on the bus (``ratelimit.lua``: increment and
  expiry in one atomic step), shared by every process; Meet counts match requests with it.
  The result carries the ``X-RateLimit-*`` headers a REST view returns.
"""

import math
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from .scripts import Script

RATE_SCRIPT = Script(Path(__file__).with_name("ratelimit.lua"))


class TokenBucket:
    """``rate`` events per second with a ``burst``; ``take`` says whether one more is allowed."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass(frozen=True)
class RateLimit:
    """The outcome of one counted request in a fixed window."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the window starts again

    def headers(self) -> dict[str, str]:
        """Return the ``X-RateLimit-*`` headers (plus ``Retry-After`` when refused)."""
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.reset_seconds)
        return out


def window_take(
    *, name: str, limit: int, window_seconds: float, client: redis.Redis | None = None
) -> RateLimit:
    """Count one request in the fixed window ``name`` (a full bus key) of ``limit`` requests."""
    count, ttl_ms = RATE_SCRIPT.run(keys=[name], args=[int(window_seconds * 1000)], client=client)
    count = int(count)
    return RateLimit(
        allowed=count <= limit,
        limit=limit,
        remaining=max(0, limit - count),
        reset_seconds=max(1, math.ceil(int(ttl_ms) / 1000)),
    )
