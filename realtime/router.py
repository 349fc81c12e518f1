"""Frame routing: a request ``type`` maps to one small async handler in its own app.

A handler is ``async def handler(conn, data: dict) -> dict``; it raises ``ProtocolError``
(or an app error carrying ``code`` and ``message``) to reply with an error. Apps register
their handlers with ``@handler("type")`` in a ``handlers`` module listed below.
"""

import importlib
from collections.abc import Awaitable, Callable

Handler = Callable[..., Awaitable[dict]]
HANDLERS: dict[str, Handler] = {}
# Frame types a client may send without ``ref``: fire-and-forget, no reply at all (typing,
# docs/protocol.md). With a ``ref`` they are ordinary requests.
REF_OPTIONAL: set[str] = set()

HANDLER_MODULES = [
    "realtime.handlers",
    "conversations.handlers",
    "presence.handlers",
    "matching.handlers",
    "live.handlers",
]


def handler(frame_type: str, *, ref_optional: bool = False) -> Callable[[Handler], Handler]:
    """Register ``func`` as the handler of request frames of ``frame_type``."""

    def register(func: Handler) -> Handler:
        if frame_type in HANDLERS:
            raise RuntimeError(f"two handlers for {frame_type!r}")
        HANDLERS[frame_type] = func
        if ref_optional:
            REF_OPTIONAL.add(frame_type)
        return func

    return register


def load_handlers() -> dict[str, Handler]:
    """Import every handler module once and return the registry."""
    for name in HANDLER_MODULES:
        importlib.import_module(name)
    return HANDLERS
