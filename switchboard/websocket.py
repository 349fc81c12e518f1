"""uvicorn's wsproto WebSocket protocol: a close code for a frame it cannot parse, and a
synchronous write for frames the application built itself.

The Procfile runs uvicorn with ``--ws switchboard.websocket:WSProtocol``. wsproto reports a
frame it cannot parse (a text frame that is not UTF-8: 1007; a protocol error: 1002) as a
``CloseConnection`` event of the peer, while the connection stays open on its side;
uvicorn's ``handle_close`` answers a close only in the ``REMOTE_CLOSING`` state, so it
dropped the TCP connection without a close frame, and the client saw 1006 instead of the
reason (RFC 6455, 7.4.1). Here the server sends that close frame itself, then closes.

``send_now`` (in the scope's extensions as ``switchboard.send_now``, only when no extension
such as permessage-deflate can be negotiated) writes a complete frame at once and says
whether it could: the gateway fans an event out to a process' idle sockets with it, one
write each in one pass, without waking a task per socket or building the frame per socket
(``realtime/consumer.py``). ASGI's ``send`` is a coroutine; a fan-out that awaited it per
socket paid a task switch each.

``receive_into`` (``switchboard.receive_into``) is the same for what the client sends: the
gateway attaches its inbox and each frame goes into it as uvicorn parses it, instead of
into uvicorn's queue for a task awaiting ``receive`` to hand on (one task wake-up less for
every frame, and one task less per socket). Back-pressure is kept: reading pauses while the
inbox is full. Nothing between uvicorn and the consumer may wrap ``receive`` then (nothing
does: the auth middleware and the router pass it through). This module imports no Django:
uvicorn loads it before the application.
"""

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets import wsproto_impl
from wsproto import events
from wsproto.connection import ConnectionState

SEND_NOW = "switchboard.send_now"
RECEIVE_INTO = "switchboard.receive_into"


class _Events(asyncio.Queue):
    """uvicorn's queue of a socket's ASGI events, handed to a sink once one is attached."""

    def __init__(self) -> None:
        super().__init__()
        self.sink: Callable[[Any], bool] | None = None
        self.room = True

    def put_nowait(self, item: Any) -> None:
        sink = self.sink
        if sink is None:
            super().put_nowait(item)
        else:
            self.room = sink(item)


class WSProtocol(wsproto_impl.WSProtocol):
    """``uvicorn.protocols.websockets.wsproto_impl.WSProtocol`` with a close code on a bad
    frame and a synchronous write of ready frames."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue: _Events = _Events()

    def handle_connect(self, event: events.Request) -> None:
        super().handle_connect(event)
        self.scope["extensions"][RECEIVE_INTO] = {
            "attach": self.receive_into,
            "resume": self.resume_reading,
        }
        if not self.config.ws_per_message_deflate:
            self.scope["extensions"][SEND_NOW] = {"send": self.send_now}

    def receive_into(self, sink: Callable[[Any], bool] | None) -> None:
        """Hand every ASGI event of this socket to ``sink(event)`` as it is parsed, in order
        (those already queued first), instead of queueing it for ``receive``; ``None``
        detaches it. No task waits on ``receive`` for each frame then, to hand it on.

        ``sink`` returns whether it has room for more: while it has none, reading stays
        paused (as uvicorn pauses it after each message until ``receive`` takes it), until
        the application calls ``resume_reading``.
        """
        queue = self.queue
        while sink is not None and not queue.empty():
            queue.room = sink(queue.get_nowait())
        queue.sink = sink

    def resume_reading(self) -> None:
        """Read the socket again (the sink of ``receive_into`` has room)."""
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()

    def handle_message(self, event: events.TextMessage | events.BytesMessage) -> None:
        super().handle_message(event)  # queued (or sunk), reading paused
        if self.queue.sink is not None and self.queue.room:
            self.resume_reading()

    def send_now(self, frame: bytes) -> bool:
        """Write ``frame`` (a whole server frame, ``realtime.codec.wire_text``) now.

        False, with nothing written, where uvicorn's ``send`` would wait or refuse (the
        transport's buffer is full, the socket is closing or not open yet): the caller then
        sends through ``send`` as usual. A transport already closing drops it, as ``send``
        does.
        """
        if (
            self.disconnected
            or not self.handshake_complete
            or self.close_sent
            or self.response_started
            or not self.writable.is_set()
            or self.conn.state is not ConnectionState.OPEN
        ):
            return False
        if not self.transport.is_closing():
            self.transport.write(frame)
        return True

    def handle_close(self, event: events.CloseConnection) -> None:
        if self.close_sent or self.conn.state != ConnectionState.OPEN:
            super().handle_close(event)  # a real close frame of the peer, or ours echoed
            return
        # A frame wsproto could not parse: the peer sent no close, we send one with its code.
        self.close_sent = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": event.code})
        if not self.transport.is_closing():
            close = events.CloseConnection(code=event.code, reason=event.reason)
            self.transport.write(self.conn.send(close))
            self.transport.close()
