"""Protocol errors: each has a stable ``code`` a client can switch on (docs/protocol.md)."""


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, **extra):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


# Stable error codes carried in reply frames.
BAD_JSON = "bad_json"
INVALID = "invalid"
TOO_LARGE = "too_large"
UNKNOWN_TYPE = "unknown_type"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
CONFLICT = "conflict"
INTERNAL = "internal"

# Close codes (4000-4999 are the application's range in RFC 6455).
CLOSE_RATE_LIMITED = 4429
CLOSE_TOO_MANY_CONNECTIONS = 4409
