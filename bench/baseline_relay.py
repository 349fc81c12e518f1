"""The machine's practical limit: a bare ASGI relay over Redis pub/sub (``make bench`` baseline).

No Django, no database, no persistence, no authorisation: what is left of a chat relay
when everything Switchboard adds is taken away. It speaks just enough of the gateway's
protocol (docs/protocol.md) for the ``messaging`` load generator to drive it unchanged:

- ``ws://host:port/ws?uid=<user>&c=<conversation>``: the socket joins one conversation; the
  ``Authorization`` header is ignored;
- on connect: ``{"type": "hello"}``; ``sync`` is answered with an empty ``reply``;
- ``message.send`` (``ref``, ``data.conversation_id``, ``data.body``): one ``PUBLISH`` of the
  ``message.new`` frame to the conversation's channel, then the ``reply``;
- ``typing.start``: one ``PUBLISH`` of a ``typing`` frame to the conversation's channel
  (replied to only with a ``ref``), for the ``typical`` scenario; any other frame (``ping``)
  gets an empty ``reply``;
- every process has one ``SUBSCRIBE`` connection (``redis.asyncio`` pub/sub) and relays each
  frame of a channel to its local sockets of that conversation, the sender's included (the
  gateway echoes too).

``seq`` is a per-process counter (times 16, plus the process' ``RELAY_NODE``), unique per
run and increasing per sender, not per conversation: nothing is stored to number messages
by. Run: ``uvicorn bench.baseline_relay:app`` with ``REDIS_URL`` and ``REDIS_KEY_PREFIX``.
"""

import asyncio
import itertools
import json
import os
from collections import defaultdict
from urllib.parse import parse_qs

import redis.asyncio as aioredis

PREFIX = os.environ.get("REDIS_KEY_PREFIX", "sbrelay") + ":relay:c:"
NODE = int(os.environ.get("RELAY_NODE", "0"))


class Relay:
    """Per-process state: one publishing pool, one subscription, local sockets per channel."""

    def __init__(self) -> None:
        url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
        self.redis = aioredis.Redis.from_url(url, decode_responses=True)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.local: dict[str, set] = defaultdict(set)
        self.seq = itertools.count(1)
        self.reader: asyncio.Task | None = None
        self.lock = asyncio.Lock()

    async def join(self, channel: str, send) -> None:
        async with self.lock:
            first = not self.local[channel]
            self.local[channel].add(send)
            if first:
                await self.pubsub.subscribe(channel)
            if self.reader is None:
                self.reader = asyncio.create_task(self._read())

    async def leave(self, channel: str, send) -> None:
        async with self.lock:
            self.local[channel].discard(send)
            if not self.local[channel]:
                del self.local[channel]
                await self.pubsub.unsubscribe(channel)

    async def _read(self) -> None:
        while True:
            message = await self.pubsub.get_message(timeout=1.0)
            if message is None or message["type"] != "message":
                continue
            frame = {"type": "websocket.send", "text": message["data"]}
            for send in list(self.local.get(message["channel"], ())):
                try:
                    await send(frame)
                except Exception:  # a socket closing meanwhile; its handler cleans up
                    continue


_relay: Relay | None = None


def _get_relay() -> Relay:
    global _relay
    if _relay is None:  # created inside the running loop (uvicorn runs with --lifespan off)
        _relay = Relay()
    return _relay


async def _http(scope, receive, send) -> None:
    status = 200 if scope["path"] == "/healthz" else 404
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"ok" if status == 200 else b""})


async def _websocket(scope, receive, send) -> None:
    relay = _get_relay()
    query = parse_qs(scope.get("query_string", b"").decode())
    uid = int(query["uid"][0])
    cid = int(query["c"][0])
    channel = f"{PREFIX}{cid}"
    event = await receive()
    if event["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": '{"type":"hello","data":{}}'})
    await relay.join(channel, send)
    try:
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                return
            frame = json.loads(event.get("text") or event.get("bytes") or "{}")
            ref = frame.get("ref")
            if frame.get("type") == "message.send":
                data = frame["data"]
                seq = next(relay.seq) * 16 + NODE
                out = {
                    "type": "message.new",
                    "data": {
                        "conversation_id": cid,
                        "seq": seq,
                        "sender_id": uid,
                        "body": data["body"],
                    },
                }
                await relay.redis.publish(channel, json.dumps(out))
                reply = {"type": "reply", "ref": ref, "ok": True, "data": {"seq": seq}}
            elif frame.get("type") == "typing.start":  # the typical scenario's typing
                typing = {"type": "typing", "data": {"conversation_id": cid, "user_id": uid}}
                await relay.redis.publish(channel, json.dumps(typing))
                if ref is None:
                    continue
                reply = {"type": "reply", "ref": ref, "ok": True, "data": {"sent": True}}
            else:
                reply = {"type": "reply", "ref": ref, "ok": True, "data": {}}
            await send({"type": "websocket.send", "text": json.dumps(reply)})
    finally:
        await relay.leave(channel, send)


async def app(scope, receive, send) -> None:
    """The ASGI application: ``/healthz`` over HTTP, the relay over WebSocket."""
    if scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "websocket":
        await _websocket(scope, receive, send)
