"""The one WebSocket consumer: a transport that knows no app.

It authenticates (``realtime.auth``, in front of it), decodes frames (``realtime.codec``),
rate-limits them, routes each request to the handler an app registered
(``core.router.handler``) and replies once; it runs the apps' connection hooks (connect,
disconnect, heartbeat) and lets their event hooks see pushed events before it sends them.
Apps keep their per-connection state in their own objects (``conn.state(Kind)``); nothing
outside this module sets attributes on a connection. Channels runs a consumer's handlers one
at a time, so a frame, a push and a hook never interleave on one socket.
"""

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from core import errors
from core.errors import Refused, ServiceError
from core.events import user_group
from core.metrics import WS_FRAMES_IN_BY_TYPE, WS_FRAMES_OUT_BY_TYPE, frame_type_label
from core.ratelimit import TokenBucket
from core.router import EVENT_HOOKS, EVENT_HOOKS_NOW, HANDLERS, REF_OPTIONAL, hooks_for

from .codec import (
    FrameError,
    event_text,
    event_wire,
    frame_decode,
    frame_encode,
    ref_valid,
    reply_frame,
    wire_text,
)

logger = logging.getLogger(__name__)
# Rate-limited in settings.LOGGING: during an outage every connect fails the same way.
outage_logger = logging.getLogger("realtime.outage")
# The scope extensions of ``switchboard.websocket.WSProtocol``: {"send": send_now(frame) -> bool}
# and {"attach": receive_into(sink), "resume": resume_reading()}.
SEND_NOW = "switchboard.send_now"
RECEIVE_INTO = "switchboard.receive_into"
S = TypeVar("S")


class _SourceFailed:
    """An exception raised by one of a consumer's message sources."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class _Inbox:
    """A consumer's one queue: its client's frames and its channel's events, in arrival order.

    The channel layer's receiving task appends events (the published bytes) with
    ``put_nowait``; the task reading the client's frames appends them with ``put_frame``,
    which waits while ``frames_max`` frames are queued (the client's back-pressure, as
    Channels had it: uvicorn stops reading the socket while its own queue is full). One
    deque and at most one waiting future: an ``asyncio.Queue`` is four deques and an
    ``Event``, and Channels kept two per socket plus a task waiting on one of them.
    """

    __slots__ = ("_frames", "_frames_max", "_items", "_now", "_resume", "_room", "_waiter")

    def __init__(
        self,
        frames_max: int,
        now: "Callable[[bytes], bool] | None" = None,
        resume: "Callable[[], None] | None" = None,
    ) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._frames = 0
        self._frames_max = frames_max
        self._room: asyncio.Future[None] | None = None
        self._now = now
        self._resume = resume

    def put_nowait(self, item: Any) -> None:
        """Queue ``item``; an event reaching an idle consumer is first offered to ``now``.

        Idle: the consumer waits in ``get`` with nothing queued, so handling the event here
        and now is what its loop would do next, in the same order. ``now(raw)`` returns True
        when it delivered or dropped the event itself (the gateway's fan-out in one pass,
        ``GatewayConsumer._event_now``), False to queue it as usual.
        """
        now = self._now
        if now is not None and type(item) is bytes and not self._items:
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                try:
                    if now(item):
                        return
                except Exception:  # as a failed push in ``dispatch``: logged, dropped
                    logger.exception("event delivery failed")
                    return
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def put_frame(self, item: Any) -> None:
        while self._frames >= self._frames_max:
            self._room = asyncio.get_running_loop().create_future()
            await self._room
        self._frames += 1
        self.put_nowait(_Frame(item))

    def frame_now(self, item: Any) -> bool:
        """Queue what the client sent, handed over by the protocol itself (``RECEIVE_INTO``);
        return whether there is room for more (else the protocol stops reading until
        ``resume``)."""
        self._frames += 1
        self.put_nowait(_Frame(item))
        return self._frames < self._frames_max

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        if isinstance(item, _Frame):
            self._frames -= 1
            room = self._room
            if room is not None and not room.done():
                room.set_result(None)
            if self._resume is not None and self._frames < self._frames_max:
                self._resume()
            return item.value
        return item


class _Frame:
    """What the client sent (or how reading it failed), as queued in an ``_Inbox``."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


# Channels ships no types: its base classes are ``Any`` to mypy.
class GatewayConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """One socket; implements ``core.router.Connection`` for handlers and hooks."""

    _user_id: int
    _open = False  # authenticated and admitted: disconnect hooks run for it
    _joining: list[str] | None = None  # groups joined while opening, subscribed together
    _closing = False  # a close was sent: whatever is queued behind it is dropped
    _send_now: Callable[[bytes], bool] | None = None  # the server's synchronous write, if any

    @property
    def user_id(self) -> int:
        return self._user_id

    @property
    def credential(self) -> str | None:
        return self.scope.get("auth_credential")  # set by realtime.auth

    def state(self, kind: type[S]) -> S:
        """Return this connection's instance of an app's state class (created on first use)."""
        found: S | None = self._states.get(kind)
        if found is None:
            found = self._states[kind] = kind()
        return found

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Channels' ``AsyncConsumer.__call__``, with a leaner loop of messages.

        Channels waits on its two sources (the client's frames, the channel layer's events)
        with a new ``Task`` and an ``asyncio.wait`` for every message (``await_many_dispatch``:
        a quarter of a server's own time in the fan-out profile). Here both feed one
        ``_Inbox`` and this loop dispatches from it, one message at a time as before:
        handlers still never overlap and each source keeps its order. The channel layer
        appends its events to the inbox itself (``ChannelLayer.local_channel``), and so does
        the WebSocket protocol with the client's frames (``RECEIVE_INTO``, at most two
        ahead: it stops reading the socket while two wait); under another server, one task
        reads them into it from ``receive``.
        """
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        extensions = scope.get("extensions", {})
        send_now = extensions.get(SEND_NOW)
        self._send_now = send_now["send"] if send_now else None
        receive_into = extensions.get(RECEIVE_INTO)
        inbox = _Inbox(
            frames_max=2,
            now=self._event_now if self._send_now else None,
            resume=receive_into["resume"] if receive_into else None,
        )
        self._inbox = inbox
        self.channel_name = self.channel_layer.local_channel(inbox)
        self.base_send = send
        deserialize = self._deserialize = self.channel_layer.deserialize

        async def frames() -> None:
            try:
                while True:
                    await inbox.put_frame(await receive())
            except Exception as exc:  # hand it to the loop, which raises it as Channels did
                await inbox.put_frame(_SourceFailed(exc))

        reader: asyncio.Future[None] | None = None
        if receive_into is not None:  # the protocol hands each frame over as it parses it
            receive_into["attach"](inbox.frame_now)
        else:
            reader = asyncio.ensure_future(frames())
        try:
            while True:
                message = await inbox.get()
                if isinstance(message, bytes):  # an event, as published
                    message = deserialize(message)
                elif isinstance(message, _SourceFailed):
                    raise message.error
                await self.dispatch(message)
        except StopConsumer:
            pass
        finally:
            self.channel_layer.local_channel_close(self.channel_name)
            if reader is None:
                receive_into["attach"](None)
            else:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)

    async def connect(self) -> None:
        # Accept first, then close with a code: a refused handshake carries no close code.
        await self.accept()
        auth_error = self.scope.get("auth_error")
        if auth_error:
            await self.close(code=auth_error)
            return
        self._user_id = self.scope["user"].pk
        self._states: dict[type, Any] = {}
        self._groups: set[str] = set()
        self._bucket = TokenBucket(
            settings.LIMITS["WS_RATE_PER_SECOND"], settings.LIMITS["WS_RATE_BURST"]
        )
        try:
            for hook in hooks_for("admit"):
                await hook(self)
        except Refused as exc:  # before anything was registered: nothing to undo
            logger.info("user=%s refused: %s", self._user_id, exc)
            await self.close(code=exc.close_code, reason=exc.reason or None)
            return
        except Exception as exc:
            await self._open_failed(exc)
            return
        self._open = True
        try:
            # The user's group first: what is pushed to the user while the hooks read (a
            # conversation.joined after the memberships were read) is not missed. The groups
            # the hooks join are subscribed together, one SUBSCRIBE for every conversation,
            # before ``hello`` (and so before the client's ``sync`` reads what it missed).
            await self.group_join(user_group(self._user_id))
            self._joining = []
            for hook in hooks_for("connect"):
                await hook(self)
            joining, self._joining = self._joining, None
            await self.channel_layer.group_add_many(joining, self.channel_name)
        except Refused as exc:
            # A connect hook may refuse too: one that must see the user's group joined first
            # (accounts' suspension check: a suspension committed after it is heard).
            self._joining = None
            logger.info("user=%s refused: %s", self._user_id, exc)
            await self.disconnect(exc.close_code)  # undo what the hooks registered
            await self.close(code=exc.close_code, reason=exc.reason or None)
            return
        except Exception as exc:
            self._joining = None
            try:
                await self.disconnect(errors.CLOSE_TRY_AGAIN)  # undo what the hooks registered
            except Exception as undo_exc:  # the bus may be what is away: presence expires
                outage_logger.warning("user=%s clean-up failed: %r", self._user_id, undo_exc)
            await self._open_failed(exc)
            return
        await self.send_frame(
            {
                "type": "hello",
                "data": {
                    "user_id": self._user_id,
                    "auth": self.scope.get("auth_method"),
                    "limits": {
                        "frame_max_bytes": settings.LIMITS["WS_FRAME_MAX_BYTES"],
                        "rate_per_second": settings.LIMITS["WS_RATE_PER_SECOND"],
                        "rate_burst": settings.LIMITS["WS_RATE_BURST"],
                        "message_max_chars": settings.LIMITS["MESSAGE_MAX_CHARS"],
                        "resume_max_messages": settings.LIMITS["RESUME_MAX_MESSAGES"],
                    },
                },
            }
        )

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the socket once; frames and events already queued behind the close are dropped.

        A flooder's queued frames all break the rate again (4429) and a push can follow a
        revocation (4440): the server may send nothing after its close (uvicorn raises on a
        second one), and a socket on its way out is expected, not an error (Hardening 9).
        """
        if self._closing:
            return
        self._closing = True
        await super().close(code=code, reason=reason)

    async def _open_failed(self, exc: Exception) -> None:
        """A hook failed (PostgreSQL or Redis away): close 1013, give a one-time ticket back."""
        outage_logger.warning("user=%s connect failed, closed 1013: %r", self._user_id, exc)
        give_back = self.scope.get("auth_give_back")
        if give_back is not None:
            try:
                await give_back()
            except Exception as undo_exc:
                outage_logger.warning("user=%s ticket not given back: %r", self._user_id, undo_exc)
        await self.close(code=errors.CLOSE_TRY_AGAIN)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Channels' ``websocket_disconnect`` without its ``aclose_old_connections``: a hop
        to the single sync thread for every closing socket (10 % of a server's time in the
        reconnect storm, and every closing socket queued behind the others). No handler
        holds an ORM connection across frames: ``core.db.db`` closes stale ones itself, in
        the thread that uses them (as ``dispatch`` says)."""
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        if not self._open:
            return
        self._open = False
        for hook in hooks_for("disconnect"):
            try:
                await hook(self)
            except Exception:  # one app's clean-up must not skip the others'
                logger.exception("user=%s disconnect hook %s failed", self._user_id, hook)
        for group in list(self._groups):
            await self.group_leave(group)

    async def group_join(self, group: str) -> None:
        """Receive the events pushed to ``group`` until ``group_leave`` or disconnect.

        While the socket opens, joins are collected and subscribed together at the end.
        """
        if group not in self._groups:
            self._groups.add(group)
            if self._joining is not None:
                self._joining.append(group)
                return
            await self.channel_layer.group_add(group, self.channel_name)

    async def group_leave(self, group: str) -> None:
        if group in self._groups:
            self._groups.discard(group)
            if self._joining is not None and group in self._joining:
                self._joining.remove(group)
                return
            await self.channel_layer.group_discard(group, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Route one ASGI or channel-layer message to its handler.

        Channels' own ``dispatch`` first runs ``close_old_connections`` through a hop to the
        single sync thread, for every frame in and every event out. Here no handler touches
        the ORM except through ``core.db.db``, which closes stale connections itself in
        the thread that uses them, so that hop only queued every socket behind one thread
        (docs/benchmarks.md).
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        if message["type"] in ("websocket.connect", "websocket.disconnect"):
            await handler(message)
            return
        try:
            await handler(message)
        except StopConsumer:
            raise
        except OSError as exc:
            # The client went away while a reply or a push was being written (uvicorn's
            # ClientDisconnected is an OSError): expected, not an error; its disconnect runs
            # the clean-up.
            logger.debug(
                "user=%s message=%s: socket gone (%r)",
                getattr(self, "_user_id", None),
                message["type"],
                exc,
            )
        except Exception:
            # One failed frame or push (a database hiccup during a gap fill, say) must not
            # kill the socket: a dead consumer never runs disconnect(), so its groups,
            # presence and pool entries would linger. Cursors only move on delivery, so
            # the next event or resume retries what failed here.
            logger.exception(
                "user=%s message=%s failed", getattr(self, "_user_id", None), message["type"]
            )

    # -- frames from the client --------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self._open or self._closing:
            return
        for hook in hooks_for("frame"):
            await hook(self)
        if not self._bucket.take():
            logger.info("user=%s closed: frame rate exceeded", self._user_id)
            await self.close(code=errors.CLOSE_RATE_LIMITED)
            return
        try:
            frame = frame_decode(text_data)
        except FrameError as exc:
            await self.reply(None, error=(exc.code, exc.message))
            return
        frame_type = frame.get("type")
        WS_FRAMES_IN_BY_TYPE.inc(frame_type_label(frame_type, HANDLERS))
        ref = frame.get("ref")
        if ref is None and isinstance(frame_type, str) and frame_type in REF_OPTIONAL:
            await self._run_without_reply(frame_type, frame.get("data", {}))
            return
        if not ref_valid(ref):
            await self.reply(None, error=(errors.INVALID, "ref must be a short string or number."))
            return
        func = HANDLERS.get(frame_type) if isinstance(frame_type, str) else None
        if func is None:
            await self.reply(
                ref, error=(errors.UNKNOWN_TYPE, f"Unknown frame type {frame_type!r}.")
            )
            return
        data = frame.get("data", {})
        if not isinstance(data, dict):
            await self.reply(ref, error=(errors.INVALID, "data must be a JSON object."))
            return
        try:
            result = await func(self, data)
        except ServiceError as exc:
            await self.reply(ref, error=(exc.code, exc.message), extra=exc.extra)
        except errors.OUTAGE_ERRORS as exc:  # PostgreSQL or Redis away: not a bug, try again
            outage_logger.warning(
                "user=%s frame=%s unavailable: %r", self._user_id, frame_type, exc
            )
            await self.reply(
                ref,
                error=(errors.UNAVAILABLE, errors.OUTAGE_MESSAGE),
                extra={"retry_after": errors.OUTAGE_RETRY_AFTER_SECONDS},
            )
        except Exception:
            logger.exception("user=%s frame=%s failed", self._user_id, frame_type)
            await self.reply(ref, error=(errors.INTERNAL, "The server failed; try again."))
        else:
            await self.reply(ref, data=result)

    async def _run_without_reply(self, frame_type: str, data: object) -> None:
        """A fire-and-forget frame (typing without ``ref``): no reply, errors dropped."""
        if not isinstance(data, dict):
            return
        try:
            await HANDLERS[frame_type](self, data)
        except ServiceError:
            pass
        except Exception:
            logger.exception("user=%s frame=%s failed", self._user_id, frame_type)

    async def reply(
        self,
        ref: Any,
        *,
        data: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        await self.send_frame(reply_frame(ref, data=data, error=error, extra=extra))

    async def send_frame(
        self, frame: dict[str, Any], text: str | None = None, wire: bytes | None = None
    ) -> None:
        """Send ``frame``; ``text`` is its encoding when the caller already has it, ``wire``
        the written frame of that text (``codec.event_wire``)."""
        if self._closing:
            return  # a reply or push behind our own close: the client no longer hears it
        WS_FRAMES_OUT_BY_TYPE.inc(frame["type"])
        if text is None:
            text = frame_encode(frame)
        send_now = self._send_now
        if send_now is not None and send_now(wire if wire is not None else wire_text(text)):
            return
        await self.send(text_data=text)

    # -- events from the channel layer ------------------------------------------------

    async def push_event(self, message: dict[str, Any]) -> None:
        """Handle ``push.event`` from ``core.events.send_event``.

        ``message`` is shared by every local consumer of the group (``core/layer.py``):
        read it, never change it, except for the frame encoded once for all of them.
        """
        if message.get("except_user_id") == self._user_id:
            return  # e.g. my own typing, on every device of mine
        hook = EVENT_HOOKS.get(message["event"])
        if hook is not None and await hook(self, message):
            return
        await self.send_event(message)

    async def send_event(self, message: dict[str, Any]) -> None:
        await self.send_frame(
            {"type": message["event"], "data": message["data"]},
            event_text(message),
            event_wire(message) if self._send_now is not None else None,
        )

    def later(self, delay: float, message: dict[str, Any]) -> None:
        """``Connection.later``: ``message`` joins this socket's inbox after ``delay``."""

        def post() -> None:
            if self._open and not self._closing:
                self._inbox.put_nowait(message)

        asyncio.get_running_loop().call_later(delay, post)

    def send_event_now(self, message: dict[str, Any]) -> bool:
        """Write the event's frame (built once per process) if the socket takes it now."""
        if self._closing:
            return False
        if self._send_now is None or not self._send_now(event_wire(message)):
            return False
        WS_FRAMES_OUT_BY_TYPE.inc(message["event"])
        return True

    def _event_now(self, raw: bytes) -> bool:
        """An event reaching this socket while it is idle (``_Inbox.put_nowait``): deliver
        or drop it here and now when its hooks can decide without waiting; False queues it.

        This is the fan-out in one pass: the channel layer's receiving task hands a group's
        event to each local socket in turn, and each idle one writes the frame built once
        for all of them, with no task woken per socket. Whatever needs a read (a gap in the
        seqs, members to re-read), a socket busy with a frame, or an event without a
        synchronous hook goes through the inbox and ``push_event`` as before.
        """
        if not self._open or self._closing:
            return False
        message = self._deserialize(raw)
        if message.get("type") != "push.event":
            return False
        if message.get("except_user_id") == self._user_id:
            return True
        event = message["event"]
        hook = EVENT_HOOKS_NOW.get(event)
        if hook is not None:
            verdict = hook(self, message)
            if verdict is None:
                return False
            if verdict:
                return True
        elif event in EVENT_HOOKS:
            return False
        return self.send_event_now(message)
