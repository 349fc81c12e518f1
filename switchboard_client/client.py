"""The reconnecting client: one socket at a time, request / reply, subscriptions, resume,
back-off, heartbeat and an outbox (docs/client.md, "The Python client").

Shaped like the browser's ``static/js/switchboard.js`` (itself Phoenix's JS client): the same
states, options, cursors and outbox rules, in asyncio. A run task owns the connection: it
opens a ``Connection``, sends ``sync`` with the cursors, enters ``OPEN``, and then waits
for the socket to close or the heartbeat to go unanswered; then it backs off and does it
again. A reader task per connection routes replies to their requests and events to the
subscribers.
"""

import asyncio
import contextlib
import enum
import inspect
import itertools
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Self

from switchboard_client.backoff import BACKOFF_BASE_SECONDS, BACKOFF_MAX_SECONDS, backoff_delay
from switchboard_client.connection import Connection, Frame
from switchboard_client.errors import ConnectError, ConnectionClosed, RequestError

log = logging.getLogger("switchboard_client")


class State(enum.StrEnum):
    """The client's states; the values are the JS client's ``State``."""

    CONNECTING = "connecting"  # the first attempt
    OPEN = "open"  # hello received and sync answered: live
    RECONNECTING = "reconnecting"  # lost; the next attempt is scheduled (back-off)
    CLOSED = "closed"  # close() was called (also the initial state)
    UNAUTHORIZED = "unauthorized"  # closed 4401: credentials missing, bad or expired
    FORBIDDEN = "forbidden"  # closed 4403: origin not allowed


class CloseCode(enum.IntEnum):
    """Close codes of docs/protocol.md section 1 the client acts on, and its own."""

    UNAUTHENTICATED = 4401
    ORIGIN_FORBIDDEN = 4403
    RATE_LIMITED = 4429
    # Ours: the heartbeat's reply (or hello + sync) was late; the socket is dropped.
    HEARTBEAT_TIMEOUT = 4000


@dataclass(frozen=True)
class Options:
    """Timing and bounds; the defaults are the JS client's (seconds instead of ms)."""

    request_timeout: float = 10.0
    # A server that goes silent is taken for lost within heartbeat_interval +
    # heartbeat_timeout (10 s): a ping after that much silence, no reply in time: reconnect.
    heartbeat_interval: float = 5.0
    heartbeat_timeout: float = 5.0
    backoff_base: float = BACKOFF_BASE_SECONDS
    backoff_max: float = BACKOFF_MAX_SECONDS
    connect_timeout: float = 10.0  # open + hello + sync; past it the attempt failed
    outbox_retry: float = 5.0  # pause before re-sending after a soft failure
    sync_chunk: int = 500  # conversations per sync (LIMITS.RESUME_MAX_CONVERSATIONS)
    # After a 4429 (frame rate exceeded), wait at least this before reconnecting.
    rate_limited_wait: float = 1.0
    # Frames are paced under the server's limit from hello.limits, with this margin.
    rate_margin: float = 0.8


class Event(NamedTuple):
    """One pushed event, as a subscription yields it."""

    type: str
    data: dict[str, Any]


@dataclass
class Outgoing:
    """A message put in the outbox: ``done`` resolves with the stored Message (once, across
    reconnects), or raises the server's ``RequestError`` (e.g. ``forbidden``)."""

    client_id: str
    done: asyncio.Future[dict[str, Any]]


@dataclass
class Opened:
    """What ``on_open`` handlers get after every successful connect + sync."""

    hello: dict[str, Any]
    sync: dict[str, Any]  # the reply's per-conversation summaries, by id (a string)
    joined: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    truncated: bool = False
    reconnect: bool = False


Handler = Callable[..., Any]


class Subscription:
    """An async iterator of pushed events of some types; ends when closed or the client
    closes. ``async with client.subscribe("message.new") as events: async for e in events``."""

    _END = object()

    def __init__(self, client: "Client", types: tuple[str, ...], maxsize: int) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self._client = client
        self._unsubscribe = [client.on(t, self._put) for t in types]
        client._subscriptions.add(self)

    def _put(self, data: dict[str, Any], frame: Frame) -> None:
        try:
            self._queue.put_nowait(Event(frame.get("type", ""), data))
        except asyncio.QueueFull:
            log.warning("subscription full: dropped a %s event", frame.get("type"))

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        self._client._subscriptions.discard(self)
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(self._END)

    async def get(self, timeout: float | None = None) -> Event:
        """The next event; ``TimeoutError`` after ``timeout``."""
        async with asyncio.timeout(timeout):
            item = await self._queue.get()
        if item is self._END:
            self._queue.put_nowait(self._END)
            raise StopAsyncIteration
        event: Event = item
        return event

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Outbox:
    """Unsent messages by client_id, oldest first; kept in a JSON file when given a path."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.items: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            try:
                for item in json.loads(path.read_text()):
                    if isinstance(item, dict) and isinstance(item.get("client_id"), str):
                        self.items[item["client_id"]] = item
            except (OSError, ValueError):
                log.warning("outbox %s unreadable: starting empty", path)

    def save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(list(self.items.values())))
        os.replace(tmp, self.path)

    def add(self, item: dict[str, Any]) -> None:
        self.items[item["client_id"]] = item
        self.save()

    def delete(self, client_id: str) -> bool:
        had = self.items.pop(client_id, None) is not None
        if had:
            self.save()
        return had


def new_client_id() -> str:
    return uuid.uuid4().hex


class _Bucket:
    """Paces frames under the server's rate (tokens per second, bursts)."""

    def __init__(self, rate: float = 16.0, burst: float = 48.0) -> None:
        self.rate, self.burst, self.tokens = rate, burst, burst
        self.stamp = time.monotonic()

    def wait(self) -> float:
        """Take a token; return how long to sleep first (0: send now)."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class Client:
    """A reconnecting client of one Switchboard server.

    ::

        async with Client(url, token=token) as client:       # connect() + close()
            client.on("message.new", lambda m, frame: print(m["body"]))
            await client.request("ping")
            sent = client.send(conversation_id, "hello")
            message = await sent.done

    ``token`` authenticates with the ``Authorization`` header; ``ticket`` is an async
    function returning a one-time ticket, called before every connect
    (``switchboard_client.ticket_source(base_url, token)``). ``outbox_path`` keeps unsent
    messages across restarts of the program (a JSON file).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        ticket: Callable[[], Awaitable[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        outbox_path: Path | str | None = None,
        options: Options | None = None,
    ) -> None:
        if token is None and ticket is None:
            raise ValueError("give a token or a ticket source")
        self.url = url
        self.token = token
        self.ticket = ticket
        self.headers = dict(headers or {})
        self.opts = options or Options()
        self.state = State.CLOSED
        self.hello: dict[str, Any] | None = None
        self.user_id: int | None = None
        self.attempt = 0  # failed attempts since the last OPEN (drives the back-off)
        self.last_close: tuple[int, str] | None = None  # (code, reason) of the last close
        self.connection: Connection | None = None
        self._refs = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Frame]] = {}
        self._handlers: dict[str, list[Handler]] = {}
        self._state_handlers: list[Handler] = []
        self._open_handlers: list[Handler] = []
        self._gap_handlers: list[Handler] = []
        self._stale_handlers: list[Handler] = []
        self._subscriptions: set[Subscription] = set()
        self._cursors: dict[int, int] = {}
        self._change_cursors: dict[int, int] = {}
        self.outbox = Outbox(Path(outbox_path) if outbox_path is not None else None)
        self._in_flight: set[str] = set()
        self._outbox_waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self._outbox_timer: asyncio.TimerHandle | None = None
        self._bucket = _Bucket()
        self._send_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._run_task: asyncio.Task[None] | None = None
        self._state_changed = asyncio.Event()
        self._wake = asyncio.Event()  # reconnect_now(): end the back-off wait
        self._heard_at = 0.0
        self._ever_opened = False

    # -- subscriptions -------------------------------------------------------------------

    def on(self, event_type: str, fn: Handler) -> Callable[[], None]:
        """Call ``fn(data, frame)`` for each pushed event of ``event_type`` ("*": all);
        a coroutine function runs as a task. Returns an unsubscribe function."""
        self._handlers.setdefault(event_type, []).append(fn)
        return lambda: _remove(self._handlers.get(event_type, []), fn)

    def subscribe(self, *event_types: str, maxsize: int = 0) -> Subscription:
        """An async iterator of the events of ``event_types`` (all with "*")."""
        return Subscription(self, event_types or ("*",), maxsize)

    def on_state(self, fn: Handler) -> Callable[[], None]:
        """Call ``fn(state, previous)`` on every state change."""
        self._state_handlers.append(fn)
        return lambda: _remove(self._state_handlers, fn)

    def on_open(self, fn: Handler) -> Callable[[], None]:
        """Call ``fn(opened: Opened)`` after every successful connect + sync: re-subscribe
        to per-connection things (``live.subscribe``) here."""
        self._open_handlers.append(fn)
        return lambda: _remove(self._open_handlers, fn)

    def on_gap(self, fn: Handler) -> Callable[[], None]:
        """Call ``fn({conversation_id, after_seq, latest_seq})`` when messages must be read
        over REST (``sync.too_far``)."""
        self._gap_handlers.append(fn)
        return lambda: _remove(self._gap_handlers, fn)

    def on_stale(self, fn: Handler) -> Callable[[], None]:
        """Call ``fn({conversation_id, after_change_seq, latest_change_seq})`` when more
        edits and deletes were missed than the server replays: re-read the messages shown."""
        self._stale_handlers.append(fn)
        return lambda: _remove(self._stale_handlers, fn)

    # -- cursors -------------------------------------------------------------------------

    def set_cursor(self, conversation_id: int, seq: int, change_seq: int | None = None) -> None:
        """Record that the program holds every message up to ``seq`` (and every edit and
        delete up to ``change_seq``); never lowers a cursor."""
        cid = int(conversation_id)
        if self._cursors.get(cid, -1) < seq:
            self._cursors[cid] = seq
        if change_seq is not None:
            self._raise_change(cid, change_seq)

    def _raise_change(self, cid: int, change_seq: int) -> None:
        if self._change_cursors.get(cid, -1) < change_seq:
            self._change_cursors[cid] = change_seq

    def cursor(self, conversation_id: int) -> int | None:
        """The highest seq delivered to the program in this conversation."""
        return self._cursors.get(int(conversation_id))

    def change_cursor(self, conversation_id: int) -> int | None:
        return self._change_cursors.get(int(conversation_id))

    def cursors(self) -> dict[int, dict[str, int | None]]:
        """Every cursor, to save and hand to ``set_cursor`` in a later run."""
        return {
            cid: {"seq": seq, "change_seq": self._change_cursors.get(cid)}
            for cid, seq in self._cursors.items()
        }

    # -- connection ----------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting (and reconnecting) in the background."""
        if self._run_task is not None and not self._run_task.done():
            return
        self.attempt = 0
        self._run_task = asyncio.get_running_loop().create_task(self._run())

    async def connect(self, timeout: float | None = None) -> None:
        """Start, and return once OPEN; ``ConnectError`` if the server refuses the
        credentials (4401) or the origin (4403), ``TimeoutError`` after ``timeout``."""
        self.start()
        await self.wait_open(timeout)

    async def wait_open(self, timeout: float | None = None) -> None:
        """Return once OPEN (at once if it is); raise as ``connect()`` does."""
        async with asyncio.timeout(timeout):
            while self.state is not State.OPEN:
                if self.state in (State.UNAUTHORIZED, State.FORBIDDEN, State.CLOSED) and (
                    self._run_task is None or self._run_task.done()
                ):
                    code, reason = self.last_close or (0, "")
                    raise ConnectError(f"{self.state}: {reason}", close_code=code, reason=reason)
                self._state_changed.clear()
                await self._state_changed.wait()

    async def close(self) -> None:
        """Close for good (until ``start()``/``connect()``); pending requests fail with
        ``closed``, subscriptions end. The outbox is kept (and its ``done`` futures wait)."""
        task, self._run_task = self._run_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._outbox_timer is not None:
            self._outbox_timer.cancel()
        self._fail_pending("closed", "The client was closed.")
        for sub in list(self._subscriptions):
            sub.close()
        for t in list(self._tasks):
            t.cancel()
        self._set_state(State.CLOSED)

    async def __aenter__(self) -> Self:
        await self.connect(self.opts.connect_timeout * 3)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def is_open(self) -> bool:
        return self.state is State.OPEN

    def reconnect_now(self) -> None:
        """Skip the back-off wait, or drop the current socket and connect again."""
        if self.connection is not None:
            self.connection.abort()
        self._wake.set()

    async def _run(self) -> None:
        state = State.RECONNECTING if self._ever_opened else State.CONNECTING
        while True:
            self._set_state(state)
            code = await self._attempt()
            if code == CloseCode.UNAUTHENTICATED:
                self._fail_pending("unauthorized", "Not authenticated.")
                self._set_state(State.UNAUTHORIZED)
                return
            if code == CloseCode.ORIGIN_FORBIDDEN:
                self._fail_pending("forbidden", "This origin may not connect.")
                self._set_state(State.FORBIDDEN)
                return
            state = State.RECONNECTING
            self._set_state(state)
            delay = backoff_delay(self.attempt, self.opts.backoff_base, self.opts.backoff_max)
            if code == CloseCode.RATE_LIMITED:
                delay = max(delay, self.opts.rate_limited_wait)
            self.attempt += 1
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _attempt(self) -> int | None:
        """One connection, from open to close; return the close code (None: no socket)."""
        try:
            ticket = await self.ticket() if self.ticket is not None else None
            conn = await Connection.open(
                self.url,
                token=self.token if ticket is None else None,
                ticket=ticket,
                headers=self.headers,
                open_timeout=self.opts.connect_timeout,
            )
        except ConnectError as exc:
            log.info("connect failed: %s", exc)
            if exc.close_code is not None:
                self.last_close = (exc.close_code, exc.reason)
            return exc.close_code
        except Exception as exc:  # the ticket source failed (HTTP): retry with back-off
            log.info("no ticket: %r", exc)
            return None
        self.connection = conn
        reader = asyncio.get_running_loop().create_task(self._read(conn))
        try:
            dropped = await self._session(conn, reader)
            if dropped is not None:
                conn.abort()  # a reply was late: the peer may never answer a closing handshake
                self.last_close = (CloseCode.HEARTBEAT_TIMEOUT, dropped)
            else:
                self.last_close = (conn.close_code or 1006, conn.close_reason or "")
        finally:
            self.connection = None
            if not reader.done():
                if conn.is_open:
                    await conn.close(1000, "client close")
                reader.cancel()
            try:
                await reader
            except (asyncio.CancelledError, ConnectionClosed):
                pass
            except Exception:  # a frame the client could not handle: start afresh
                log.exception("reader failed")
            # Replies to requests sent on this socket will never come.
            self._fail_pending("closed", "The connection was lost before the reply.")
        return self.last_close[0]

    async def _session(self, conn: Connection, reader: asyncio.Task[None]) -> str | None:
        """Sync, go OPEN, keep the heartbeat; return why the client drops the socket
        (``sync failed``, ``heartbeat timeout``), or None when the socket closed."""
        self.hello = conn.hello
        self.user_id = conn.user_id
        limits = conn.hello.get("limits") or {}
        if limits.get("rate_per_second"):
            # Stay under the server's frame rate (close 4429) with a margin.
            m = self.opts.rate_margin
            self._bucket = _Bucket(
                limits["rate_per_second"] * m, max(1, int(limits.get("rate_burst", 10) * m))
            )
        self._heard_at = time.monotonic()
        try:
            async with asyncio.timeout(self.opts.connect_timeout):
                opened = await self._sync(conn)
        except (RequestError, TimeoutError) as exc:
            log.info("sync failed: %s", exc)
            return None if reader.done() else "sync failed"
        self.attempt = 0
        opened.reconnect = self._ever_opened
        self._ever_opened = True
        self._set_state(State.OPEN)
        self._flush_outbox()
        for fn in list(self._open_handlers):
            self._call(fn, opened)
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(conn))
        try:
            done, _ = await asyncio.wait({reader, heartbeat}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            heartbeat.cancel()
        if heartbeat in done and not heartbeat.cancelled() and heartbeat.result():
            return "heartbeat timeout"
        return None

    async def _sync(self, conn: Connection) -> Opened:
        """Send the cursors (in chunks of ``sync_chunk``), as docs/protocol.md's sync says."""
        entries = list(self._cursors.items())
        chunk = self.opts.sync_chunk
        frames = max(1, -(-len(entries) // chunk))
        opened = Opened(hello=conn.hello, sync={})
        for f in range(frames):
            conversations: dict[str, Any] = {}
            for cid, seq in entries[f * chunk : (f + 1) * chunk]:
                change = self._change_cursors.get(cid)
                conversations[str(cid)] = (
                    seq if change is None else {"seq": seq, "change_seq": change}
                )
            data: dict[str, Any] = {"conversations": conversations}
            if f < frames - 1:
                data["more"] = True  # the lists come with the last frame
            reply = await self._push(conn, "sync", data, self.opts.request_timeout)
            summaries = reply.get("conversations") or {}
            opened.sync.update(summaries)
            for key, summary in summaries.items():
                # Every change up to the head is now held: replayed, or read with the messages.
                if isinstance(conversations.get(key), dict):
                    self._raise_change(int(key), summary["latest_change_seq"])
            opened.left.extend(reply.get("left") or [])
            if f == frames - 1:
                opened.joined = reply.get("joined") or []
                opened.requests = reply.get("requests") or []
                opened.truncated = bool(reply.get("truncated"))
        for conv in opened.joined:
            self.set_cursor(conv["id"], conv["last_seq"], conv.get("last_change_seq"))
        for cid in opened.left:
            self._dispatch("conversation.left", {"conversation_id": cid}, None)
        return opened

    async def _heartbeat(self, conn: Connection) -> bool:
        """Ping after ``heartbeat_interval`` with nothing heard; return True when a ping's
        reply is ``heartbeat_timeout`` late (the socket is then dead, whatever TCP says)."""
        interval = self.opts.heartbeat_interval
        while True:
            silent_for = time.monotonic() - self._heard_at
            if silent_for < interval:
                await asyncio.sleep(interval - silent_for)
                continue
            try:
                await self._push(conn, "ping", {}, self.opts.heartbeat_timeout)
            except RequestError as exc:
                if exc.code == "timeout":
                    log.info("heartbeat timeout: reconnecting")
                    return True
                return False

    async def _read(self, conn: Connection) -> None:
        """Route every frame: replies to their request, events to the subscribers."""
        pending = self._pending
        dispatch = self._dispatch
        monotonic = time.monotonic
        async for frame in conn:
            self._heard_at = monotonic()  # anything heard proves the server alive
            kind = frame.get("type")
            if kind == "reply":
                fut = pending.pop(frame.get("ref"), None)  # type: ignore[arg-type]
                if fut is not None and not fut.done():
                    fut.set_result(frame)
            elif kind != "hello":
                try:  # free in 3.11 unless raised
                    dispatch(kind, frame.get("data") or {}, frame)
                except (KeyError, TypeError):  # an event without the fields it must have
                    log.warning("malformed %s event: %.200r", kind, frame)

    def _set_state(self, state: State) -> None:
        if state is self.state:
            return
        previous, self.state = self.state, state
        self._state_changed.set()
        for fn in list(self._state_handlers):
            self._call(fn, state, previous)

    # -- requests ------------------------------------------------------------------------

    async def request(
        self,
        frame_type: str,
        data: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        queue: bool = True,
    ) -> dict[str, Any]:
        """Send a request and return its reply's ``data``; raise ``RequestError``.

        While not OPEN the request waits (its timeout running) and goes out once OPEN;
        with ``queue=False`` it fails at once with ``offline``."""
        timeout = self.opts.request_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if self.state is not State.OPEN:
            if not queue:
                raise RequestError("offline", "Not connected.")
            try:
                await self.wait_open(timeout)
            except TimeoutError as exc:
                raise RequestError("timeout", f"No reply to {frame_type} in {timeout} s.") from exc
            except ConnectError as exc:
                raise RequestError(str(self.state), str(exc)) from exc
        conn = self.connection
        if conn is None:
            raise RequestError("closed", "Not connected.")
        return await self._push(
            conn, frame_type, data or {}, max(0.001, deadline - time.monotonic())
        )

    async def _push(
        self, conn: Connection, frame_type: str, data: Mapping[str, Any], timeout: float
    ) -> dict[str, Any]:
        ref = str(next(self._refs))
        fut: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[ref] = fut
        try:
            async with asyncio.timeout(timeout):
                await self._send(conn, {"type": frame_type, "ref": ref, "data": data})
                frame = await fut
        except TimeoutError as exc:
            raise RequestError("timeout", f"No reply to {frame_type} in {timeout} s.") from exc
        except ConnectionClosed as exc:
            raise RequestError("closed", f"The socket closed ({exc}).") from exc
        finally:
            self._pending.pop(ref, None)
        if not frame.get("ok"):
            raise RequestError.from_reply(frame)
        reply: dict[str, Any] = frame.get("data") or {}
        return reply

    async def _send(self, conn: Connection, frame: Mapping[str, Any]) -> None:
        # One sender at a time, in call order (asyncio.Lock is FIFO): paced frames keep
        # their order, so the outbox's messages are stored in the order they were written.
        async with self._send_lock:
            pause = self._bucket.wait()
            if pause:
                await asyncio.sleep(pause)
            await conn.send(frame)

    async def notify(self, frame_type: str, data: Mapping[str, Any] | None = None) -> bool:
        """Send a frame without ``ref`` (only ``typing.start`` / ``typing.stop`` allow it):
        no reply. Dropped unless OPEN (a stale typing indicator is worse than none)."""
        conn = self.connection
        if self.state is not State.OPEN or conn is None:
            return False
        try:
            await self._send(conn, {"type": frame_type, "data": dict(data or {})})
        except ConnectionClosed:
            return False
        return True

    async def accept(self, conversation_id: int) -> dict[str, Any]:
        """Accept a request or an invitation (``conversation.accept``)."""
        return await self.request("conversation.accept", {"conversation_id": int(conversation_id)})

    async def decline(self, conversation_id: int) -> dict[str, Any]:
        """Decline a request or an invitation (``conversation.decline``)."""
        return await self.request("conversation.decline", {"conversation_id": int(conversation_id)})

    def _fail_pending(self, code: str, message: str) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(RequestError(code, message))

    # -- events --------------------------------------------------------------------------

    def _dispatch(self, kind: Any, data: dict[str, Any], frame: Frame | None) -> None:
        if kind == "message.new":
            cid = data["conversation_id"]
            cur = self._cursors.get(cid)
            if cur is not None:
                seq = data["seq"]
                if seq <= cur:
                    return  # already delivered: never twice
                if seq > cur + 1:
                    # The server fills gaps per connection, but the program's cursor may be
                    # ahead of what the server knew: let it read the hole over REST.
                    gap = {"conversation_id": cid, "after_seq": cur, "latest_seq": seq - 1}
                    for fn in list(self._gap_handlers):
                        self._call(fn, gap)
            self._cursors[cid] = data["seq"]
            if data.get("sender_id") == self.user_id and data.get("client_id") in self.outbox.items:
                # Our own message.new (a replay) confirms an entry as surely as its reply.
                self._confirm(data["client_id"], data)
        elif kind == "sync.too_far":
            for fn in list(self._gap_handlers):
                self._call(fn, data)
            self.set_cursor(data["conversation_id"], data["latest_seq"])
        elif kind == "message.updated":
            # Sent once each, in change order: the highest is the cursor.
            if isinstance(data.get("change_seq"), int):
                self._raise_change(data["conversation_id"], data["change_seq"])
        elif kind == "sync.changes_too_far":
            self._raise_change(data["conversation_id"], data["latest_change_seq"])
            for fn in list(self._stale_handlers):
                self._call(fn, data)
        elif kind == "conversation.left":
            self._cursors.pop(data["conversation_id"], None)
            self._change_cursors.pop(data["conversation_id"], None)
        if frame is None:
            frame = {"type": kind, "data": data}
        for key in (kind, "*"):
            for fn in self._handlers.get(key, ()):
                self._call(fn, data, frame)

    def _call(self, fn: Handler, *args: Any) -> None:
        """Run a handler; a coroutine one as a task. Its exception is logged, never raised
        into the reader (one bad handler must not stop the socket)."""
        try:
            result = fn(*args)
        except Exception:
            log.exception("handler %r failed", fn)
            return
        if inspect.isawaitable(result):
            self._spawn(result)

    def _spawn(self, awaitable: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("handler task failed", exc_info=task.exception())

    # -- messages and the outbox ---------------------------------------------------------

    def send(self, conversation_id: int, body: str, *, client_id: str | None = None) -> Outgoing:
        """Put a message in the outbox and send it when OPEN (again after every reconnect,
        and after a soft failure, always with the same ``client_id``: stored once)."""
        client_id = client_id or new_client_id()
        item: dict[str, Any] = {
            "client_id": client_id,
            "conversation_id": int(conversation_id),
            "body": body,
            "created_at": time.time(),
        }
        self.outbox.add(item)
        done = self._outbox_wait(client_id)
        if self.state is State.OPEN:
            self._send_item(item)
        return Outgoing(client_id, done)

    def pending_messages(self, conversation_id: int | None = None) -> list[dict[str, Any]]:
        """The messages not yet confirmed by the server, oldest first."""
        items = list(self.outbox.items.values())
        if conversation_id is None:
            return items
        return [i for i in items if i["conversation_id"] == int(conversation_id)]

    def discard(self, client_id: str) -> None:
        """Drop an unsent message (its ``done`` raises ``RequestError("discarded")``)."""
        if self.outbox.delete(client_id):
            self._outbox_settle(client_id, error=RequestError("discarded", "Discarded."))

    def _outbox_wait(self, client_id: str) -> asyncio.Future[dict[str, Any]]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._outbox_waiters.setdefault(client_id, []).append(fut)
        return fut

    def _outbox_settle(
        self, client_id: str, message: dict[str, Any] | None = None, error: Exception | None = None
    ) -> None:
        for fut in self._outbox_waiters.pop(client_id, []):
            if fut.done():
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(message or {})

    def _flush_outbox(self) -> None:
        self._outbox_timer = None
        if self.state is not State.OPEN:
            return
        for item in list(self.outbox.items.values()):
            self._send_item(item)

    def _send_item(self, item: dict[str, Any]) -> None:
        if item["client_id"] in self._in_flight:
            return
        self._in_flight.add(item["client_id"])
        self._spawn(self._deliver(item))

    async def _deliver(self, item: dict[str, Any]) -> None:
        client_id = item["client_id"]
        data = {
            "conversation_id": item["conversation_id"],
            "body": item["body"],
            "client_id": client_id,
        }
        try:
            reply = await self.request("message.send", data, queue=False)
        except RequestError as exc:
            if client_id not in self.outbox.items:
                return  # confirmed by its echo meanwhile, or discarded
            if exc.retryable:
                # Kept: sent again with the same client_id after the next sync, or a pause.
                if self._outbox_timer is None and self.state is State.OPEN:
                    loop = asyncio.get_running_loop()
                    self._outbox_timer = loop.call_later(self.opts.outbox_retry, self._flush_outbox)
                return
            self.outbox.delete(client_id)
            self._outbox_settle(client_id, error=exc)
            return
        finally:
            self._in_flight.discard(client_id)
        message = reply["message"]
        # When it is the next seq here, the reply is this connection's delivery of my own
        # message: the server sends it no message.new (docs/protocol.md, "message.send").
        cur = self._cursors.get(message["conversation_id"])
        if cur is None or message["seq"] == cur + 1:
            self._dispatch("message.new", message, None)
        self._confirm(client_id, message)

    def _confirm(self, client_id: str, message: dict[str, Any]) -> None:
        self.outbox.delete(client_id)
        self._outbox_settle(client_id, message)


def _remove(handlers: list[Handler], fn: Handler) -> None:
    with contextlib.suppress(ValueError):
        handlers.remove(fn)
