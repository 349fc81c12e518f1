"""The channel layer: channels_redis' pub/sub layer, decoding each published event once.

A message published to a group reaches a process once and is queued, as the same bytes, for
every local consumer in the group; the stock layer decodes it once per consumer. Here the
decoded message is shared by them, so a consumer can also share work done on it (the
encoded WebSocket frame, ``realtime/consumer.py``): a 1,000-member fan-out encodes one frame
per process instead of one per member (docs/benchmarks.md, fanout). Consumers must treat
layer messages as read-only.

A consumer's own channel is local to its process (``new_channel``): sent to by name from
elsewhere, a message would reach no one. Events go to groups.

Subscriptions change in batches (``_Subscriptions``): the groups that sockets opening at
the same moment join are one ``SUBSCRIBE`` per shard (channels-redis sends one per group,
each under the shard's lock, and ``asyncio.Lock`` scans every waiter on each acquire: a
reconnect storm queued thousands there), and a group no local socket listens to any more
stays subscribed for ``LAYER_UNSUBSCRIBE_LINGER_SECONDS`` before the groups still unheard
are unsubscribed together. A client that reconnects within that time (a reload, a storm
after a network blip) finds its groups subscribed; an event of a lingering group is read
and dropped, as it always was for a group without local sockets.
"""

import asyncio
import functools
import logging
import uuid
import weakref
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings

from core.batches import Batches

logger = logging.getLogger(__name__)


class _Subscriptions:
    """One shard's subscriptions, changed in batches (the module's text).

    Reaches into channels_redis' shard (``_lock``, ``_pubsub``, ``_subscribed_to``,
    ``_ensure_redis``, ``_ensure_receiver``), as the rest of this module does; version-pinned
    in uv.lock and checked by ``tests/core/test_layer.py``.
    """

    def __init__(self, shard: Any, layer: Any) -> None:
        self.shard = shard
        self.layer = layer  # the loop layer: its ``groups`` (replaced by a flush) are read live
        self.batches: Batches[str] = Batches(self._subscribe_now)
        self.unheard: dict[str, float] = {}  # group channel -> loop time it lost its last socket
        self.sweeping: asyncio.Task[None] | None = None

    async def subscribe(self, names: list[str]) -> None:
        """Return once every group of ``names`` is subscribed (one batch for all callers
        queued while the previous batch was on its way)."""
        for name in names:
            self.unheard.pop(name, None)
        new = [n for n in names if n not in self.shard._subscribed_to]
        if new:
            await self.batches.add(new)

    async def _subscribe_now(self, names: list[str]) -> None:
        shard = self.shard
        async with shard._lock:
            new = [n for n in dict.fromkeys(names) if n not in shard._subscribed_to]
            if new:
                shard._ensure_redis()
                shard._ensure_receiver()
                await shard._pubsub.subscribe(*new)
                shard._subscribed_to.update(new)

    def unheard_now(self, name: str) -> None:
        """The group's last local socket left: unsubscribe after the linger, unless one joins."""
        self.unheard[name] = asyncio.get_running_loop().time()
        if self.sweeping is None:
            self.sweeping = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        shard = self.shard
        loop = asyncio.get_running_loop()
        try:
            while self.unheard:
                linger = settings.LIMITS["LAYER_UNSUBSCRIBE_LINGER_SECONDS"]
                await asyncio.sleep(max(0.0, min(self.unheard.values()) + linger - loop.time()))
                now = loop.time()
                due = [n for n, since in self.unheard.items() if now - since >= linger]
                for name in due:
                    del self.unheard[name]
                try:
                    async with shard._lock:
                        gone = [
                            n
                            for n in due
                            if n not in self.layer.groups and n in shard._subscribed_to
                        ]
                        if gone:
                            # Forgotten before the command: a socket joining meanwhile
                            # subscribes again, after this on the same connection.
                            shard._subscribed_to.difference_update(gone)
                            await shard._pubsub.unsubscribe(*gone)
                except Exception:  # Redis away: its reconnect drops them all anyway
                    logger.warning("unsubscribe of %s groups failed", len(due), exc_info=True)
        finally:
            self.sweeping = None


async def _publish_now(shard: Any, items: list[tuple[str, bytes]]) -> None:
    """One shard's ``PUBLISH``es of one moment, in one pipeline, in the order they were made.

    channels-redis publishes each message in its own round trip under the shard's lock
    (which its subscriptions take too): under the typical load, typing and presence
    publishes queued there one round trip each, and the message writer's batch waited
    behind them (12 % of a server's time in that profile). Batched (``Batches``, run by the
    first caller itself when nothing is on its way), each caller still returns once its
    messages are published.
    """
    shard._ensure_redis()
    if len(items) == 1:  # a pipeline's own cost, saved for the one publish of a quiet moment
        await shard._redis.publish(*items[0])
        return
    pipe = shard._redis.pipeline(transaction=False)
    for channel, payload in items:
        pipe.publish(channel, payload)
    await pipe.execute()


# channels_redis ships no types: its base classes are ``Any`` to mypy.
class ChannelLayer(RedisPubSubChannelLayer):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Recently decoded messages kept per process (they are handed to local consumers
        # in one go when the event arrives).
        self._decoded_max: int = settings.LIMITS["LAYER_DECODED_CACHE_MAX"]
        # id(bytes) -> (those bytes, decoded): by identity, so two equal events published
        # separately are still two messages; holding the bytes keeps their id unique.
        self._decoded: dict[int, tuple[bytes, dict[str, Any]]] = {}
        self._subscriptions: weakref.WeakKeyDictionary[Any, _Subscriptions] = (
            weakref.WeakKeyDictionary()
        )
        self._publishers: weakref.WeakKeyDictionary[Any, Batches[tuple[str, bytes]]] = (
            weakref.WeakKeyDictionary()
        )

    def _subscriptions_of(self, layer: Any, shard: Any) -> _Subscriptions:
        found = self._subscriptions.get(shard)
        if found is None:
            found = self._subscriptions[shard] = _Subscriptions(shard, layer)
        return found

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A consumer's own channel (the default prefix): local to this process.

        Nothing sends to a consumer's channel by name; every event goes to a group, whose one
        subscription per process fills the queues of its local channels. So a consumer's
        channel needs no Redis subscription of its own: that was a ``SUBSCRIBE`` at every
        connect and an ``UNSUBSCRIBE`` at every close (the connection-opening profile). Other
        prefixes (``/readyz``'s round trip through Redis) subscribe as channels_redis does.
        """
        layer = self._get_layer()
        if prefix != "specific.":
            channel: str = await layer.new_channel(prefix)
            return channel
        channel = f"{layer.prefix}{prefix}local.{uuid.uuid4().hex}"
        layer.channels[channel] = asyncio.Queue()
        return channel

    def local_channel(self, sink: Any) -> str:
        """A consumer's own channel whose events go straight into ``sink``.

        ``sink.put_nowait(raw)`` gets each event as the published bytes (``deserialize``
        them), called by the shard's receiving task: no ``asyncio.Queue`` per channel and
        no task per consumer waiting on one (``realtime/consumer.py``). Local as in
        ``new_channel``; ``local_channel_close`` forgets it.
        """
        layer = self._get_layer()
        channel = f"{layer.prefix}specific.local.{uuid.uuid4().hex}"
        layer.channels[channel] = sink
        return channel

    def local_channel_close(self, channel: str) -> None:
        """Forget a ``local_channel`` (its consumer ended): nothing reaches its sink again."""
        self._get_layer().channels.pop(channel, None)

    async def group_add_many(self, groups: list[str], channel: str) -> None:
        """``group_add`` for several groups: one ``SUBSCRIBE`` per shard for those this
        process is not subscribed to yet (a socket opening joins its user's group and every
        conversation's at once, instead of a command each), shared with every socket
        opening at the same moment (``_Subscriptions``).

        Reaches into channels_redis' pub/sub internals as ``group_send_many`` does (the
        loop layer's ``groups`` and ``channels``, the shard's ``_subscribed_to``, ``_lock``
        and ``_pubsub``); ``tests/core/test_layer.py`` checks the subscriptions and delivery.
        """
        layer = self._get_layer()
        if channel not in layer.channels:
            raise RuntimeError("group_add_many() takes a channel of this process")
        by_shard: dict[int, tuple[Any, list[str]]] = {}
        for group in groups:
            group_channel = layer._get_group_channel_name(group)
            layer.groups.setdefault(group_channel, set()).add(channel)
            shard = layer._get_shard(group_channel)
            by_shard.setdefault(id(shard), (shard, []))[1].append(group_channel)
        for shard, names in by_shard.values():
            await self._subscriptions_of(layer, shard).subscribe(names)

    async def group_add(self, group: str, channel: str) -> None:
        await self.group_add_many([group], channel)

    async def group_discard(self, group: str, channel: str) -> None:
        """Leave ``group``; its last local socket leaving unsubscribes it after the linger."""
        layer = self._get_layer()
        group_channel = layer._get_group_channel_name(group)
        members = layer.groups.get(group_channel)
        if members is None or channel not in members:
            return
        members.discard(channel)
        if not members:
            del layer.groups[group_channel]
            shard = layer._get_shard(group_channel)
            self._subscriptions_of(layer, shard).unheard_now(group_channel)

    def deserialize(self, message: bytes) -> dict[str, Any]:
        entry = self._decoded.get(id(message))
        if entry is not None and entry[0] is message:
            return entry[1]
        decoded: dict[str, Any] = super().deserialize(message)
        if len(self._decoded) >= self._decoded_max:
            del self._decoded[next(iter(self._decoded))]  # the oldest
        self._decoded[id(message)] = (message, decoded)
        return decoded

    async def group_send_many(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        """Publish several ``(group, message)`` pairs: one pipeline per shard, in order,
        shared with every publish of this process at that moment (``_publish_now``).

        ``group_send`` costs a round trip (and the shard's lock) per message; the message
        path publishes a whole stored batch at once (``conversations.writer``). This reaches
        into channels_redis' pub/sub shards (``_get_layer``, ``_get_shard``, the shard's
        ``_lock`` / ``_redis``): version-pinned in uv.lock, and ``tests/core/test_layer.py``
        checks that every message still reaches its group's subscribers, in order.
        """
        layer = self._get_layer()
        by_shard: dict[int, tuple[Any, list[tuple[str, bytes]]]] = {}
        for group, message in batch:
            channel = layer._get_group_channel_name(group)
            shard = layer._get_shard(channel)
            by_shard.setdefault(id(shard), (shard, []))[1].append(
                (channel, self.serialize(message))
            )
        for shard, items in by_shard.values():
            await self._publisher_of(shard).add(items)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await self.group_send_many([(group, message)])

    def _publisher_of(self, shard: Any) -> Batches[tuple[str, bytes]]:
        found = self._publishers.get(shard)
        if found is None:
            found = self._publishers[shard] = Batches(
                functools.partial(_publish_now, shard), inline=True
            )
        return found
