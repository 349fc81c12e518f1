"""Full-jitter exponential back-off (the AWS architecture blog's; docs/protocol.md section 3)."""

import random
from collections.abc import Callable

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
# 2 ** 64 * base is past any sane cap: the exponent stops growing there (and a float never
# overflows however many attempts failed).
_MAX_EXPONENT = 64


def backoff_cap(
    attempt: int, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_MAX_SECONDS
) -> float:
    """Return the upper bound of the delay before retry ``attempt`` (0 for the first)."""
    exponent: int = min(max(attempt, 0), _MAX_EXPONENT)
    return min(cap, base * float(2**exponent))


def backoff_delay(
    attempt: int,
    base: float = BACKOFF_BASE_SECONDS,
    cap: float = BACKOFF_MAX_SECONDS,
    rand: Callable[[], float] = random.random,
) -> float:
    """Return a delay in [0, min(cap, base * 2 ** attempt)): ``sleep(random(0, ...))``."""
    return rand() * backoff_cap(attempt, base, cap)
