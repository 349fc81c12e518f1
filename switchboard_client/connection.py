"""One socket to a Switchboard server: open it (token or ticket), read ``hello``, and send and
receive JSON frames. No reconnect, no heartbeat, no ref matching in the background: that is
``Client``'s job (client.py). Load generators, tests and scripts that want every frame as it
comes use this layer alone.

Frames are JSON text (docs/protocol.md section 2; the server speaks nothing else: a binary
frame gets ``invalid``), encoded and decoded with the standard library's ``json``; per frame
this layer adds one call over the websockets library.
"""

import asyncio
import json
import socket
from collections import deque
from collections.abc import Mapping
from typing import Any, Self
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed as _WsClosed
from websockets.exceptions import ConnectionClosedOK as _WsClosedOK
from websockets.exceptions import InvalidHandshake, InvalidStatus

from switchboard_client.errors import ConnectError, ConnectionClosed, RequestError

Frame = dict[str, Any]

OPEN_TIMEOUT_SECONDS = 10.0  # TCP + upgrade + hello
CLOSE_TIMEOUT_SECONDS = 2.0
REQUEST_TIMEOUT_SECONDS = 10.0
# The largest frame accepted from the server. Its own 64 KiB limit is on what it receives;
# what it sends can be far larger: a sync reply lists up to 200 conversations in `joined`
# and 200 in `requests`, each with its last message (4,000 characters, up to 16 KB).
MAX_FRAME_BYTES = 16 * 2**20
# Close code 1006 (no close frame: the TCP connection just ended).
CLOSE_ABNORMAL = 1006

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_loads = json.loads


def _closed(exc: _WsClosed) -> ConnectionClosed:
    close = exc.rcvd or exc.sent
    if close is None:
        return ConnectionClosed(CLOSE_ABNORMAL, "connection lost")
    return ConnectionClosed(close.code, close.reason)


def url_with_ticket(url: str, ticket: str) -> str:
    """Return ``url`` with ``?ticket=`` (tickets go in the URL, tokens never do)."""
    return f"{url}{'&' if '?' in url else '?'}ticket={quote(ticket, safe='')}"


class Connection:
    """An open socket past its ``hello``. ``hello`` is the hello frame's ``data``
    (``user_id``, ``auth``, ``limits``).

    ``recv()`` returns the next frame; ``request()`` sends one request and reads until its
    reply, keeping the frames read meanwhile for the next ``recv()`` calls (so one coroutine
    at a time reads: the concurrent, reconnecting client is ``Client``).
    """

    def __init__(self, ws: ClientConnection, hello: Frame) -> None:
        self.ws = ws
        self.hello_frame = hello
        self.hello: Frame = hello.get("data") or {}
        self.user_id: int | None = self.hello.get("user_id")
        self.backlog: deque[Frame] = deque()
        self._refs = 0

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        token: str | None = None,
        ticket: str | None = None,
        headers: Mapping[str, str] | None = None,
        open_timeout: float = OPEN_TIMEOUT_SECONDS,
        close_timeout: float = CLOSE_TIMEOUT_SECONDS,
        compression: str | None = None,
        max_queue: int | tuple[int | None, int | None] | None = 16,
        sock: socket.socket | None = None,
    ) -> Self:
        """Open ``url`` (``ws[s]://host/ws``) with a token (header) or a one-time ticket (URL)
        and return once ``hello`` arrived; raise ``ConnectError`` otherwise.

        The websockets library's own ping is off: the server pings and the library answers;
        a client that wants to notice a dead server uses the protocol's ``ping`` (``Client``
        does). ``compression``: None (the server's Procfile turns permessage-deflate off) or
        ``"deflate"`` as browsers offer it. ``max_queue``: frames buffered before reading
        stops (None: unbounded, for load generators that read in bursts). ``sock``: a
        connected socket to use (a test that shrinks its receive buffer).
        """
        extra = dict(headers or {})
        if token is not None:
            extra["Authorization"] = f"Token {token}"
        if ticket is not None:
            url = url_with_ticket(url, ticket)
        try:
            async with asyncio.timeout(open_timeout):
                ws = await connect(
                    url,
                    additional_headers=extra,
                    ping_interval=None,
                    compression=compression,
                    open_timeout=None,
                    close_timeout=close_timeout,
                    max_size=MAX_FRAME_BYTES,
                    max_queue=max_queue,
                    sock=sock,
                )
                try:
                    first = _loads(await ws.recv())
                except BaseException:
                    ws.transport.abort()
                    raise
        except _WsClosed as exc:
            closed = _closed(exc)
            raise ConnectError(
                f"closed {closed.code} before hello: {closed.reason}",
                close_code=closed.code,
                reason=closed.reason,
            ) from exc
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise ConnectError(f"upgrade refused: HTTP {status}", status=status) from exc
        except (OSError, InvalidHandshake) as exc:
            raise ConnectError(f"cannot connect to {url}: {exc!r}") from exc
        except TimeoutError as exc:
            raise ConnectError(f"no hello from {url} within {open_timeout} s") from exc
        if not isinstance(first, dict) or first.get("type") != "hello":
            ws.transport.abort()
            raise ConnectError(f"the first frame is not hello: {first!r:.200}")
        return cls(ws, first)

    # -- frames ------------------------------------------------------------------------

    async def send(self, frame: Mapping[str, Any]) -> None:
        """Send one frame (JSON-encoded)."""
        try:
            await self.ws.send(_dumps(frame))
        except _WsClosed as exc:
            raise _closed(exc) from exc

    async def send_raw(self, data: str | bytes) -> None:
        """Send a frame as given: a str as a text frame (a load generator formats its own
        JSON), bytes as a binary frame (which the server refuses with ``invalid``)."""
        try:
            await self.ws.send(data)
        except _WsClosed as exc:
            raise _closed(exc) from exc

    async def recv(self, timeout: float | None = None) -> Frame:
        """Return the next frame (kept ones first); ``TimeoutError`` after ``timeout``,
        ``ConnectionClosed`` once the socket is closed."""
        if self.backlog:
            return self.backlog.popleft()
        try:
            if timeout is None:
                raw = await self.ws.recv()
            else:
                async with asyncio.timeout(timeout):
                    raw = await self.ws.recv()
        except _WsClosed as exc:
            raise _closed(exc) from exc
        frame: Frame = _loads(raw)
        return frame

    def __aiter__(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def __anext__(self) -> Frame:
        """Frames until the socket closes: the iteration ends on a normal close (1000,
        1001), ``ConnectionClosed`` is raised on any other."""
        if self.backlog:
            return self.backlog.popleft()
        try:
            raw = await self.ws.recv()
        except _WsClosedOK as exc:
            raise StopAsyncIteration from exc
        except _WsClosed as exc:
            raise _closed(exc) from exc
        frame: Frame = _loads(raw)
        return frame

    def next_ref(self) -> str:
        self._refs += 1
        return str(self._refs)

    async def reply(
        self,
        frame_type: str,
        data: Mapping[str, Any] | None = None,
        *,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> Frame:
        """Send a request and return its reply frame (``ok`` true or false); the frames
        that arrive before it are kept for ``recv()``. ``TimeoutError`` without a reply."""
        ref = self.next_ref()
        await self.send({"type": frame_type, "ref": ref, "data": dict(data or {})})
        kept: list[Frame] = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        raw = await self.ws.recv()
                    except _WsClosed as exc:
                        raise _closed(exc) from exc
                    frame: Frame = _loads(raw)
                    if frame.get("type") == "reply" and frame.get("ref") == ref:
                        return frame
                    kept.append(frame)
        finally:
            self.backlog.extend(kept)

    async def request(
        self,
        frame_type: str,
        data: Mapping[str, Any] | None = None,
        *,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> Frame:
        """Send a request and return its reply's ``data``; raise ``RequestError`` for an
        error reply (``timeout`` without one, ``closed`` if the socket closed first)."""
        try:
            frame = await self.reply(frame_type, data, timeout=timeout)
        except TimeoutError as exc:
            raise RequestError("timeout", f"No reply to {frame_type} in {timeout} s.") from exc
        except ConnectionClosed as exc:
            raise RequestError("closed", f"The socket closed before the reply ({exc}).") from exc
        if not frame.get("ok"):
            raise RequestError.from_reply(frame)
        reply_data: Frame = frame.get("data") or {}
        return reply_data

    # -- closing -----------------------------------------------------------------------

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    @property
    def close_reason(self) -> str | None:
        return self.ws.close_reason

    @property
    def is_open(self) -> bool:
        return self.ws.close_code is None

    async def wait_closed(self, timeout: float | None = None) -> int | None:
        """Wait until the socket is closed (by either side); return its close code.
        ``TimeoutError`` if it is still open after ``timeout``."""
        async with asyncio.timeout(timeout):
            await self.ws.wait_closed()
        return self.ws.close_code

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with a closing handshake (at most ``close_timeout``)."""
        await self.ws.close(code, reason)

    def abort(self) -> None:
        """Drop the TCP connection at once, without a closing handshake (a dead or frozen
        server would never answer one)."""
        self.ws.transport.abort()
