"""uvicorn's wsproto WebSocket protocol, closing with the code of a frame it cannot parse.

The Procfile runs uvicorn with ``--ws switchboard.websocket:WSProtocol``. wsproto reports a
frame it cannot parse (a text frame that is not UTF-8: 1007; a protocol error: 1002) as a
``CloseConnection`` event of the peer, while the connection stays open on its side;
uvicorn's ``handle_close`` answers a close only in the ``REMOTE_CLOSING`` state, so it
dropped the TCP connection without a close frame, and the client saw 1006 instead of the
reason (RFC 6455, 7.4.1). Here the server sends that close frame itself, then closes. This
module imports no Django: uvicorn loads it before the application.
"""

from uvicorn.protocols.websockets import wsproto_impl
from wsproto import events
from wsproto.connection import ConnectionState


class WSProtocol(wsproto_impl.WSProtocol):
    """``uvicorn.protocols.websockets.wsproto_impl.WSProtocol`` with a close code on a bad frame."""

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
