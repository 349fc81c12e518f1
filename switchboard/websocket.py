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
socket paid a task switch each. This module imports no Django: uvicorn loads it before the
application.
"""

from uvicorn.protocols.websockets import wsproto_impl
from wsproto import events
from wsproto.connection import ConnectionState

SEND_NOW = "switchboard.send_now"


class WSProtocol(wsproto_impl.WSProtocol):
    """``uvicorn.protocols.websockets.wsproto_impl.WSProtocol`` with a close code on a bad
    frame and a synchronous write of ready frames."""

    def handle_connect(self, event: events.Request) -> None:
        super().handle_connect(event)
        if not self.config.ws_per_message_deflate:
            self.scope["extensions"][SEND_NOW] = {"send": self.send_now}

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
