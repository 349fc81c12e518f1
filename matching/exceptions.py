"""Errors raised by Meet services, each with a stable protocol code (docs/protocol.md)."""

from switchboard.errors import ServiceError


class MatchError(ServiceError):
    """An error of this app's services (see switchboard.errors)."""


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
