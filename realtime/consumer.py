"""The one WebSocket consumer: parses frames, routes them by type, delivers pushed events.

Each connection keeps, per conversation, the highest ``seq`` it has delivered (its cursor).
Sequenced events (``message.new``) pass through ``_deliver_sequenced``: duplicates are
dropped, a gap is filled from the database before the event, so the client sees every seq
once and in order whatever the channel layer did. Channels runs a consumer's handlers one
at a time, so a ``sync`` replay and the live events queued behind it never interleave.
"""

import json
import logging
import time

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from conversations import selectors as conv_selectors
from matching import pool as meet_pool
from ops import connections as ws_connections
from ops.metrics import WS_FRAMES_IN, WS_FRAMES_OUT, frame_type_label
from presence import gateway as presence
from presence import selectors as presence_selectors
from switchboard.errors import ServiceError

from . import errors
from .db import db
from .errors import ProtocolError
from .events import conversation_group, user_group
from .router import REF_OPTIONAL, load_handlers

logger = logging.getLogger(__name__)

# Sequenced events that arrive before the client's ``sync`` wait here (per connection).
PRESYNC_BUFFER_MAX = 1000
REF_MAX_CHARS = 64


def frame_encode(frame: dict) -> str:
    return json.dumps(frame, separators=(",", ":"))


def event_text(message: dict) -> str:
    """Return the WebSocket frame of a pushed event, encoded once per process.

    The layer hands the same decoded message to every local consumer of a group
    (``realtime/layer.py``); the first one to send it stores the encoding there.
    """
    text = message.get("_frame")
    if text is None:
        text = message["_frame"] = frame_encode({"type": message["event"], "data": message["data"]})
    return text


class TokenBucket:
    """Frames allowed per second with a burst; ``take`` says whether one more is allowed."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class GatewayConsumer(AsyncWebsocketConsumer):
    handlers = None

    async def connect(self):
        # Accept first, then close with a code: a refused handshake carries no close code.
        await self.accept()
        auth_error = self.scope.get("auth_error")
        if auth_error:
            await self.close(code=auth_error)
            return
        self.user_id = self.scope["user"].pk
        limit = settings.LIMITS["WS_CONNECTIONS_PER_USER"]
        try:
            alive = await presence_selectors.connections_alive_acount(user_id=self.user_id)
        except Exception:  # Redis too busy or away: admit (the limit is a guard, not a right)
            logger.warning("user=%s connection count unavailable", self.user_id, exc_info=True)
            alive = 0
        if alive >= limit:
            logger.info("user=%s refused: more than %s connections", self.user_id, limit)
            del self.user_id  # nothing was registered: disconnect() has nothing to undo
            await self.close(code=errors.CLOSE_TOO_MANY_CONNECTIONS)
            return
        self.cursors: dict[int, int] = {}
        self.meet_entered = False  # set by the Meet handlers that put a ticket in the pool
        self.synced = False
        self.presync: list[dict] = []
        self.joined: set[int] = set()
        # Groups joined by handlers (the live feed, ...): left on disconnect.
        self.extra_groups: set[str] = set()
        self.bucket = TokenBucket(
            settings.LIMITS["WS_RATE_PER_SECOND"], settings.LIMITS["WS_RATE_BURST"]
        )
        if GatewayConsumer.handlers is None:
            GatewayConsumer.handlers = load_handlers()
        await self.channel_layer.group_add(user_group(self.user_id), self.channel_name)
        for cid in await db(conv_selectors.conversation_ids_for_user)(user_id=self.user_id):
            await self.join_conversation(cid)
        await presence.on_connect(self)
        await ws_connections.connection_opened()
        self.counted = True
        await self.send_frame(
            {
                "type": "hello",
                "data": {
                    "user_id": self.user_id,
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

    async def disconnect(self, code):
        if not hasattr(self, "user_id"):
            return
        await presence.on_disconnect(self)
        if getattr(self, "meet_entered", False):  # its ticket leaves the pool (issue #5)
            try:
                await meet_pool.apool_leave(user_id=self.user_id, channel=self.channel_name)
            except Exception:  # its TTL removes it anyway
                logger.warning("user=%s pool leave failed", self.user_id, exc_info=True)
        if getattr(self, "counted", False):
            await ws_connections.connection_closed()
        for group in list(self.extra_groups):
            await self.group_leave(group)
        await self.channel_layer.group_discard(user_group(self.user_id), self.channel_name)
        for cid in list(self.joined):
            await self.channel_layer.group_discard(conversation_group(cid), self.channel_name)

    async def join_conversation(self, cid: int) -> None:
        if cid not in self.joined:
            self.joined.add(cid)
            await self.channel_layer.group_add(conversation_group(cid), self.channel_name)

    async def group_join(self, group: str) -> None:
        """Receive the events pushed to ``group`` until ``group_leave`` or disconnect."""
        if group not in self.extra_groups:
            self.extra_groups.add(group)
            await self.channel_layer.group_add(group, self.channel_name)

    async def group_leave(self, group: str) -> None:
        if group in self.extra_groups:
            self.extra_groups.discard(group)
            await self.channel_layer.group_discard(group, self.channel_name)

    async def _leave(self, cid: int) -> None:
        self.cursors.pop(cid, None)
        if cid in self.joined:
            self.joined.discard(cid)
            await self.channel_layer.group_discard(conversation_group(cid), self.channel_name)

    async def dispatch(self, message):
        """Route one ASGI or channel-layer message to its handler.

        Channels' own ``dispatch`` first runs ``close_old_connections`` through a hop to the
        single sync thread, for every frame in and every event out. Here no handler touches
        the ORM except through ``realtime.db.db``, which closes stale connections itself in
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
        except Exception:
            # One failed frame or push (a database hiccup during a gap fill, say) must not
            # kill the socket: a dead consumer never runs disconnect(), so its groups,
            # presence and pool entries would linger. Cursors only move on delivery, so
            # the next event or resume retries what failed here.
            logger.exception(
                "user=%s message=%s failed", getattr(self, "user_id", None), message["type"]
            )

    # -- frames from the client --------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if not hasattr(self, "user_id"):
            return
        ws_connections.connection_active()
        if not self.bucket.take():
            logger.info("user=%s closed: frame rate exceeded", self.user_id)
            await self.close(code=errors.CLOSE_RATE_LIMITED)
            return
        if text_data is None:
            await self.reply(None, error=(errors.INVALID, "Send JSON as text frames."))
            return
        if len(text_data.encode()) > settings.LIMITS["WS_FRAME_MAX_BYTES"]:
            await self.reply(
                None,
                error=(
                    errors.TOO_LARGE,
                    f"A frame has at most {settings.LIMITS['WS_FRAME_MAX_BYTES']} bytes.",
                ),
            )
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            await self.reply(None, error=(errors.BAD_JSON, "The frame is not valid JSON."))
            return
        if not isinstance(frame, dict):
            await self.reply(None, error=(errors.INVALID, "A frame is a JSON object."))
            return
        WS_FRAMES_IN.labels(frame_type_label(frame.get("type"), self.handlers)).inc()
        ref = frame.get("ref")
        if ref is None and isinstance(frame.get("type"), str) and frame["type"] in REF_OPTIONAL:
            await self._run_without_reply(frame)
            return
        if not isinstance(ref, str | int) or isinstance(ref, bool) or len(str(ref)) > REF_MAX_CHARS:
            await self.reply(None, error=(errors.INVALID, "ref must be a short string or number."))
            return
        frame_type = frame.get("type")
        func = self.handlers.get(frame_type) if isinstance(frame_type, str) else None
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
        except (ProtocolError, ServiceError) as exc:
            code = exc.code
            await self.reply(ref, error=(code, exc.message), extra=exc.extra)
        except Exception:
            logger.exception("user=%s frame=%s failed", self.user_id, frame_type)
            await self.reply(ref, error=(errors.INTERNAL, "The server failed; try again."))
        else:
            await self.reply(ref, data=result)

    async def _run_without_reply(self, frame: dict) -> None:
        """A fire-and-forget frame (typing without ``ref``): no reply, errors dropped."""
        data = frame.get("data", {})
        if not isinstance(data, dict):
            return
        try:
            await self.handlers[frame["type"]](self, data)
        except (ProtocolError, ServiceError):
            pass
        except Exception:
            logger.exception("user=%s frame=%s failed", self.user_id, frame["type"])

    async def reply(self, ref, *, data=None, error=None, extra=None):
        frame = {"type": "reply", "ref": ref}
        if error is None:
            frame.update(ok=True, data=data if data is not None else {})
        else:
            frame.update(ok=False, error={"code": error[0], "message": error[1], **(extra or {})})
        await self.send_frame(frame)

    async def send_frame(self, frame: dict, text: str | None = None) -> None:
        """Send ``frame``; ``text`` is its encoding when the caller already has it."""
        WS_FRAMES_OUT.labels(frame["type"]).inc()
        await self.send(text_data=text if text is not None else frame_encode(frame))

    # -- events from the channel layer ------------------------------------------------

    async def push_event(self, message: dict):
        """Handle ``push.event`` from ``realtime.events.send_event``.

        ``message`` is shared by every local consumer of the group (``realtime/layer.py``):
        read it, never change it, except for the frame encoded once for all of them.
        """
        event, data = message["event"], message["data"]
        if message.get("except_user_id") == self.user_id:
            return  # e.g. my own typing, on every device of mine
        if event == "conversation.joined":
            await self._joined(data["conversation_id"], data["last_seq"])
        elif event == "conversation.left":
            await self._leave(data["conversation_id"])
        elif event == "conversation.members" and self.user_id in data["removed"]:
            # Also here: if the `conversation.left` push is lost, the socket still stops
            # hearing a conversation it was removed from.
            await self._leave(data["conversation_id"])
        cid, seq = message.get("conversation_id"), message.get("seq")
        if cid is not None and seq is not None:
            if cid not in self.joined:
                return
            if not self.synced:
                if len(self.presync) < PRESYNC_BUFFER_MAX:
                    self.presync.append(message)
                return
            await self._deliver_sequenced(message)
            return
        await self.send_frame({"type": event, "data": data}, event_text(message))

    async def _deliver_sequenced(self, message: dict) -> None:
        cid, seq = message["conversation_id"], message["seq"]
        cursor = self.cursors.get(cid)
        if cursor is not None and seq <= cursor:
            return  # already delivered (replay, gap fill or a duplicate push)
        if cursor is not None and seq > cursor + 1:
            await self._fill_gap(cid, cursor, seq)
            return
        # The next seq, or the first event of a conversation the client did not sync.
        await self.send_sequenced_frame(
            cid, seq, message["event"], message["data"], event_text(message)
        )

    async def _joined(self, cid: int, last_seq: int) -> None:
        """Subscribe to a conversation the user just joined and deliver what it already has.

        Messages sent between the membership's commit and this subscription were published
        before the socket listened: read them from the database (the join is rare, the
        query small) instead of waiting for a later message to reveal the gap.
        """
        await self.join_conversation(cid)
        self.cursors.setdefault(cid, last_seq)
        if self.synced:
            await self._fill_gap(cid, self.cursors[cid], None)

    async def _fill_gap(self, cid: int, cursor: int, upto: int | None) -> None:
        limit = settings.LIMITS["RESUME_MAX_MESSAGES"]
        if upto is not None and upto - cursor > limit:
            await self.send_too_far(cid, after_seq=cursor, latest_seq=upto)
            self.cursors[cid] = upto
            return
        if not await db(conv_selectors.membership_exists)(
            user_id=self.user_id, conversation_id=cid
        ):
            await self._leave(cid)  # removed, and the push saying so was lost
            return
        rows = await db(conv_selectors.messages_after)(
            conversation_id=cid, after_seq=cursor, upto_seq=upto, limit=limit
        )
        for row in rows:
            await self.send_sequenced_frame(
                cid, row.seq, "message.new", conv_selectors.message_serialize(row)
            )

    async def send_sequenced_frame(
        self, cid: int, seq: int, event: str, data: dict, text: str | None = None
    ) -> None:
        self.cursors[cid] = seq
        await self.send_frame({"type": event, "data": data}, text)

    async def send_too_far(self, cid: int, *, after_seq: int, latest_seq: int) -> None:
        await self.send_frame(
            {
                "type": "sync.too_far",
                "data": {"conversation_id": cid, "after_seq": after_seq, "latest_seq": latest_seq},
            }
        )

    async def mark_synced(self) -> None:
        """Let live events flow; deliver what queued up before ``sync``."""
        self.synced = True
        queued, self.presync = self.presync, []
        for message in queued:
            await self._deliver_sequenced(message)
