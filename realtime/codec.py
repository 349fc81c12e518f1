"""The frame codec: JSON text frames in, typed frames and error replies out (docs/protocol.md)."""

import json
import struct
from typing import Any

from django.conf import settings

from core import errors


class FrameError(Exception):
    """A frame that cannot be routed; ``ref`` is the frame's own when it could be read."""

    def __init__(self, code: str, message: str, ref: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.ref = code, message, ref


def frame_encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"))


def frame_decode(text: str | None) -> dict[str, Any]:
    """Return the frame object of a text frame, or raise ``FrameError``."""
    if text is None:
        raise FrameError(errors.INVALID, "Send JSON as text frames.")
    limit = settings.LIMITS["WS_FRAME_MAX_BYTES"]
    # Characters <= bytes <= 4 x characters: encode only when the count cannot tell.
    if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
        raise FrameError(errors.TOO_LARGE, f"A frame has at most {limit} bytes.")
    try:
        frame = json.loads(text)
    except ValueError:
        raise FrameError(errors.BAD_JSON, "The frame is not valid JSON.") from None
    except RecursionError:
        # Valid JSON nested deeper than the interpreter's recursion limit ("[" x 5,000 fits
        # in a frame); no handler reads anything that deep.
        raise FrameError(errors.INVALID, "The frame is nested too deeply.") from None
    if not isinstance(frame, dict):
        raise FrameError(errors.INVALID, "A frame is a JSON object.")
    return frame


def ref_valid(ref: object) -> bool:
    """Return whether ``ref`` is a short string or number (docs/protocol.md, "Frames")."""
    return (
        isinstance(ref, str | int)
        and not isinstance(ref, bool)
        and len(str(ref)) <= settings.LIMITS["WS_REF_MAX_CHARS"]
    )


def reply_frame(
    ref: Any,
    *,
    data: dict[str, Any] | None = None,
    error: tuple[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the reply to a request: its result, or an error with a stable code."""
    frame: dict[str, Any] = {"type": "reply", "ref": ref}
    if error is None:
        frame.update(ok=True, data=data if data is not None else {})
    else:
        frame.update(ok=False, error={"code": error[0], "message": error[1], **(extra or {})})
    return frame


def event_text(message: dict[str, Any]) -> str:
    """Return the WebSocket frame of a pushed event, encoded once per process.

    The layer hands the same decoded message to every local consumer of a group
    (``core/layer.py``); the first one to send it stores the encoding there.
    """
    text = message.get("_frame")
    if text is None:
        text = message["_frame"] = frame_encode({"type": message["event"], "data": message["data"]})
    return text


def wire_text(text: str) -> bytes:
    """Return the WebSocket frame, as written to the socket, of a text message ``text``.

    A server's frame is unmasked and, here, never fragmented or compressed (the Procfile
    turns permessage-deflate off; without it the server offers no fast path at all,
    ``switchboard.websocket``): a header of 2, 4 or 10 bytes, then the UTF-8 (RFC 6455, 5.2).
    """
    payload = text.encode()
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 0x10000:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def event_wire(message: dict[str, Any]) -> bytes:
    """Return ``event_text(message)`` as a written frame, built once per process."""
    wire = message.get("_wire")
    if wire is None:
        wire = message["_wire"] = wire_text(event_text(message))
    return wire
