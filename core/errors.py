"""The errors every layer raises: a stable ``code`` a client can switch on, plus a message.

Services raise a ``ServiceError`` subclass; the WebSocket gateway replies to any of them with
``{"code", "message", ...extra}`` and the REST API's one exception handler (``core.api``)
answers with the same body and the HTTP status of ``STATUS_BY_CODE`` (docs/protocol.md,
"Errors"). There is one class per code, shared by every app.
"""

from typing import Any

import psycopg
import redis
from django.db import InterfaceError, OperationalError

# Stable error codes carried in reply frames and REST error bodies.
BAD_JSON = "bad_json"
INVALID = "invalid"
TOO_LARGE = "too_large"
UNKNOWN_TYPE = "unknown_type"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
CONFLICT = "conflict"
RATE_LIMITED = "rate_limited"
UNAVAILABLE = "unavailable"
INTERNAL = "internal"
# Consent (design principle 11, docs/subsystems/messaging.md "Requests and invitations").
BLOCKED = "blocked"  # one of the two blocked the other: no new conversation, no send
DECLINED = "declined"  # the other side declined this direct conversation
NOT_ACCEPTED = "not_accepted"  # a request / invitation of mine that I have not accepted
REQUEST_LIMIT = "request_limit"  # my request's messages before they accept are used up
# The account is suspended or banned by a moderator (docs/subsystems/moderation.md): log-in,
# tokens and tickets are refused until ``until`` (null: banned).
SUSPENDED = "suspended"

# Errors that mean a dependency is away, not that the request or the code is wrong: REST
# answers them 503 (``core.api``), a WebSocket request ``unavailable`` (``realtime.consumer``),
# both with ``retry_after`` (docs/protocol.md, "Errors").
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,  # PostgreSQL refused, dropped the connection, or the pool timed out
    InterfaceError,
    psycopg.OperationalError,  # the same on an event loop's own connection (core.db)
    redis.ConnectionError,
    redis.TimeoutError,
)
# What an outage's error tells the client to wait before trying again, in seconds.
OUTAGE_RETRY_AFTER_SECONDS = 5
OUTAGE_MESSAGE = "A service the server needs is unavailable; try again shortly."

# The HTTP status of each code when a REST view raises it.
STATUS_BY_CODE: dict[str, int] = {
    BAD_JSON: 400,
    INVALID: 400,
    TOO_LARGE: 413,
    UNKNOWN_TYPE: 400,
    FORBIDDEN: 403,
    NOT_FOUND: 404,
    CONFLICT: 409,
    RATE_LIMITED: 429,
    UNAVAILABLE: 503,
    INTERNAL: 500,
    BLOCKED: 403,
    DECLINED: 403,
    NOT_ACCEPTED: 403,
    REQUEST_LIMIT: 403,
    SUSPENDED: 403,
}

# WebSocket close codes (4000-4999 are the application's range in RFC 6455).
# 1013 "Try Again Later" (IANA's registry): the server could not open the socket for a
# transient reason (PostgreSQL or Redis away); the client reconnects with back-off and its
# one-time ticket, if it used one, is still valid.
CLOSE_TRY_AGAIN = 1013
CLOSE_UNAUTHENTICATED = 4401
CLOSE_ORIGIN_FORBIDDEN = 4403
CLOSE_TOO_MANY_CONNECTIONS = 4409
CLOSE_RATE_LIMITED = 4429
# The credentials the socket was opened with were revoked while it was open (log-out,
# password change, API token revoked): 440 "Login Time-out", sign in again.
CLOSE_CREDENTIALS_REVOKED = 4440
# A moderator suspended or banned the account (451, "Unavailable For Legal Reasons", the
# nearest HTTP meaning): the reason says ``suspended <category> <until>`` or
# ``banned <category>`` (docs/protocol.md).
CLOSE_ACCOUNT_SUSPENDED = 4451


class ServiceError(Exception):
    """A refusal with a stable code; ``extra`` fields are added to the error body.

    ``headers`` are HTTP response headers for the REST answer (a rate limit's
    ``Retry-After``); a WebSocket reply carries only the body.
    """

    code: str = INVALID

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    @property
    def http_status(self) -> int:
        return STATUS_BY_CODE.get(self.code, 400)


class Invalid(ServiceError):
    code = INVALID


class Forbidden(ServiceError):
    code = FORBIDDEN


class NotFound(ServiceError):
    code = NOT_FOUND


class Conflict(ServiceError):
    code = CONFLICT


class Blocked(Forbidden):
    code = BLOCKED


class Declined(Forbidden):
    code = DECLINED


class NotAccepted(Forbidden):
    code = NOT_ACCEPTED


class RequestLimit(Forbidden):
    code = REQUEST_LIMIT


class Suspended(Forbidden):
    """The account is suspended or banned; ``until`` and ``category`` travel in ``extra``."""

    code = SUSPENDED


class RateLimited(ServiceError):
    """Over a rate limit; ``retry_after`` (seconds) travels in ``extra``."""

    code = RATE_LIMITED


class Unavailable(ServiceError):
    """A bounded resource is full (the Meet pool); try again later."""

    code = UNAVAILABLE


class Refused(Exception):
    """A connection hook refuses a new WebSocket: the gateway closes it with ``close_code``."""

    def __init__(self, close_code: int, reason: str = "") -> None:
        super().__init__(reason or str(close_code))
        self.close_code = close_code
        self.reason = reason  # sent as the close reason when not empty
