"""Errors raised by Meet services, each with a stable protocol code (docs/protocol.md)."""


class MatchError(Exception):
    code = "invalid"

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = message
        self.extra = extra


class Invalid(MatchError):
    code = "invalid"


class Forbidden(MatchError):
    code = "forbidden"


class NotFound(MatchError):
    code = "not_found"


class Conflict(MatchError):
    code = "conflict"


class Unavailable(MatchError):
    """The pool is full (LIMITS["MATCH_POOL_MAX"]); try again later."""

    code = "unavailable"


class RateLimited(MatchError):
    code = "rate_limited"
