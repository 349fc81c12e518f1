"""What apps plug into the WebSocket gateway: frame handlers, connection hooks, event hooks.

The gateway (``realtime``) is a transport: it authenticates, decodes frames, rate-limits,
replies, and calls what apps registered here. Apps register from their ``AppConfig.ready``
(importing their ``handlers`` / ``gateway`` modules), so the gateway imports no app.

- ``@handler("type")``: ``async def handler(conn, data: dict) -> dict`` answers a request
  frame; it raises a ``core.errors.ServiceError`` to reply with an error.
- ``@hook(point, order=N)``: ``async def hook(conn)``, run in ``order`` (low first) at
  ``admit`` (a new authenticated socket, before anything is registered for it: raise
  ``core.errors.Refused`` to close it with a close code), ``connect`` (admitted; the socket
  is in its user's group), ``frame`` (each frame received, before it is parsed),
  ``heartbeat`` (a ``ping``) and ``disconnect`` (only for admitted sockets). Hooks keep
  their own state with ``conn.state(TheirClass)``.
- ``@event_hook("event")``: ``async def hook(conn, message) -> bool`` sees a pushed event
  before the gateway sends it; True means it delivered or dropped it itself (sequenced
  events go through the conversations app's sequencer), False lets the gateway send it.
- ``@event_hook_now("event")``: ``def hook(conn, message) -> bool | None``, the same
  decision made synchronously, when it can be, for a socket the event reaches while idle
  (the gateway fans an event out to a process' idle sockets in one pass): True means it
  delivered (with ``conn.send_event_now``) or dropped it, False lets the gateway send it,
  None that it cannot decide without waiting (a read): it must then have changed nothing,
  and the event takes the ``event_hook`` path. An event with an ``event_hook`` and no
  ``event_hook_now`` always takes that path.
- ``authenticator("ticket" | "token")``: resolves a WebSocket credential to
  ``Authenticated(user, credential, give_back)`` (or None): the user, the ``credential_id``
  of what the socket may be revoked by (the token, or the session or token a ticket was
  issued to), so a log-out or a revoked token can close its sockets, and, for a credential
  used up by the look-up (a one-time ticket), ``give_back()``, which the gateway calls when
  the socket then fails to open for a transient reason (close 1013), so the client can try
  again with it.

``Connection`` is the whole API a handler or hook may use on a socket.
"""

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

S = TypeVar("S")


class Connection(Protocol):
    """One open WebSocket, as apps see it (implemented by ``realtime.consumer``)."""

    @property
    def user_id(self) -> int: ...

    @property
    def channel_name(self) -> str: ...

    @property
    def credential(self) -> str | None:
        """The ``credential_id`` this socket was authenticated with (None if unknown)."""
        ...

    def state(self, kind: type[S]) -> S:
        """Return this connection's instance of ``kind`` (created empty on first use)."""
        ...

    async def send_frame(self, frame: dict[str, Any], text: str | None = None) -> None:
        """Send a frame (``text``: its encoding, when the caller already has it)."""
        ...

    async def send_event(self, message: dict[str, Any]) -> None:
        """Send a pushed event (a channel-layer message) as its frame, encoded once per process."""
        ...

    def send_event_now(self, message: dict[str, Any]) -> bool:
        """Write a pushed event's frame at once if the socket takes it now (for an
        ``event_hook_now``); False: nothing was written."""
        ...

    def later(self, delay: float, message: dict[str, Any]) -> None:
        """Handle ``message`` (a pushed event, as the channel layer delivers them) on this
        connection after ``delay`` seconds, in turn with everything else it handles;
        nothing if the socket has closed by then."""
        ...

    async def group_join(self, group: str) -> None:
        """Receive events pushed to ``group`` until ``group_leave`` or disconnect."""
        ...

    async def group_leave(self, group: str) -> None: ...

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the socket with a close code (docs/protocol.md); disconnect hooks follow."""
        ...


@dataclass(frozen=True)
class Authenticated:
    """An authenticator's user, the ``credential_id`` its socket may be revoked by, and how
    to undo the use of a single-use credential."""

    user: Any
    credential: str | None
    give_back: Callable[[], Awaitable[None]] | None = None


Handler = Callable[[Connection, dict[str, Any]], Awaitable[dict[str, Any]]]
Hook = Callable[[Connection], Awaitable[None]]
EventHook = Callable[[Connection, dict[str, Any]], Awaitable[bool]]
EventHookNow = Callable[[Connection, dict[str, Any]], "bool | None"]
# -> (the active user, the credential_id the socket answers to), or None.
Authenticator = Callable[[str], Awaitable["Authenticated | None"]]
HookPoint = Literal["admit", "connect", "frame", "heartbeat", "disconnect"]

HANDLERS: dict[str, Handler] = {}
# Frame types a client may send without ``ref``: fire-and-forget, no reply at all (typing,
# docs/protocol.md). With a ``ref`` they are ordinary requests.
REF_OPTIONAL: set[str] = set()
HOOKS: dict[str, list[tuple[int, Hook]]] = {
    point: [] for point in ("admit", "connect", "frame", "heartbeat", "disconnect")
}
EVENT_HOOKS: dict[str, EventHook] = {}
EVENT_HOOKS_NOW: dict[str, EventHookNow] = {}
AUTHENTICATORS: dict[str, Authenticator] = {}


def handler(frame_type: str, *, ref_optional: bool = False) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of request frames of ``frame_type``."""

    def register(func: Handler) -> Handler:
        if frame_type in HANDLERS:
            raise RuntimeError(f"two handlers for {frame_type!r}")
        HANDLERS[frame_type] = func
        if ref_optional:
            REF_OPTIONAL.add(frame_type)
        return func

    return register


def hook(point: HookPoint, *, order: int = 50) -> Callable[[Hook], Hook]:
    """Register the decorated coroutine to run at ``point`` of every connection."""

    def register(func: Hook) -> Hook:
        hooks = HOOKS[point]
        if func not in [h for _, h in hooks]:
            hooks.append((order, func))
            hooks.sort(key=lambda item: item[0])
        return func

    return register


def hooks_for(point: HookPoint) -> list[Hook]:
    """Return the hooks of ``point`` in the order they run."""
    return [func for _, func in HOOKS[point]]


def event_hook(event: str) -> Callable[[EventHook], EventHook]:
    """Register the decorated coroutine to see every pushed ``event`` first."""

    def register(func: EventHook) -> EventHook:
        if EVENT_HOOKS.get(event, func) is not func:
            raise RuntimeError(f"two event hooks for {event!r}")
        EVENT_HOOKS[event] = func
        return func

    return register


def event_hook_now(event: str) -> Callable[[EventHookNow], EventHookNow]:
    """Register the decorated function as ``event``'s synchronous hook (module text)."""

    def register(func: EventHookNow) -> EventHookNow:
        if EVENT_HOOKS_NOW.get(event, func) is not func:
            raise RuntimeError(f"two synchronous event hooks for {event!r}")
        EVENT_HOOKS_NOW[event] = func
        return func

    return register


def credential_id(kind: str, secret: str) -> str:
    """Name a credential (``"session"`` and its key, ``"token"`` and its key) without it.

    Sockets remember this, and revocations carry it through the channel layer: a digest,
    so no session key or token travels through Redis or sits in a consumer.
    """
    return hashlib.sha256(f"{kind}:{secret}".encode()).hexdigest()[:32]


def authenticator(method: str) -> Callable[[Authenticator], Authenticator]:
    """Register how a WebSocket credential of ``method`` ("ticket", "token") finds its user.

    The function returns ``(user, credential_id)`` or None (unknown, used or inactive).
    """

    def register(func: Authenticator) -> Authenticator:
        AUTHENTICATORS[method] = func
        return func

    return register
