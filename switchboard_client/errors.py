"""The client's exceptions: a request's failure, a connect that failed, a closed socket."""

from typing import Any

# Error codes after which the same request may succeed later: the server's own (internal,
# rate_limited, unavailable: docs/protocol.md section 2) and the client's (timeout, offline,
# closed). The JS client's RequestError.retryable, plus `unavailable`, which the protocol
# says to retry later.
RETRYABLE_CODES = frozenset(
    {"internal", "rate_limited", "unavailable", "timeout", "offline", "closed"}
)


class SwitchboardError(Exception):
    """Base of every exception this package raises."""


class RequestError(SwitchboardError):
    """A request's failure: ``code`` is a protocol error code (``forbidden``, ``invalid``, ...)
    or one of the client's (``timeout``, ``offline``, ``closed``, ``unauthorized``,
    ``forbidden``, ``discarded``); ``extra`` holds the error's other fields (``retry_after``,
    ``fields``, ``match_id`` ...)."""

    def __init__(self, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.extra = extra or {}

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES

    @classmethod
    def from_reply(cls, frame: dict[str, Any]) -> "RequestError":
        """The error of a reply frame with ``"ok": false``."""
        error = dict(frame.get("error") or {})
        code = str(error.pop("code", None) or "internal")
        message = str(error.pop("message", None) or "Request failed.")
        return cls(code, message, error)


class ConnectionClosed(SwitchboardError):
    """The socket is closed: ``code`` and ``reason`` of the close (1006: lost, no close frame)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"closed {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


class ConnectError(SwitchboardError):
    """Opening a socket failed. ``close_code`` is set when the server accepted and then closed
    (4401 not authenticated, 4403 origin, 4409 too many connections, 1013 try later: see
    docs/protocol.md section 1), ``status`` when it refused the HTTP upgrade; neither when the
    network failed or ``hello`` did not come in time."""

    def __init__(
        self,
        message: str,
        *,
        close_code: int | None = None,
        reason: str = "",
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.reason = reason
        self.status = status
