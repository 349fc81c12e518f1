"""The channel layer: channels_redis' pub/sub layer, decoding each published event once.

A message published to a group reaches a process once and is queued, as the same bytes, for
every local consumer in the group; the stock layer decodes it once per consumer. Here the
decoded message is shared by them, so a consumer can also share work done on it (the
encoded WebSocket frame, ``realtime/consumer.py``): a 1,000-member fan-out encodes one frame
per process instead of one per member (docs/benchmarks.md, fanout). Consumers must treat
layer messages as read-only.
"""

from channels_redis.pubsub import RedisPubSubChannelLayer

# Recently decoded messages kept per process: enough for every event still being handed to
# local consumers (they are handed out in one go when the event arrives).
DECODED_MAX = 256


class ChannelLayer(RedisPubSubChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # id(bytes) -> (those bytes, decoded): by identity, so two equal events published
        # separately are still two messages; holding the bytes keeps their id unique.
        self._decoded: dict[int, tuple[bytes, dict]] = {}

    def deserialize(self, message: bytes) -> dict:
        entry = self._decoded.get(id(message))
        if entry is not None and entry[0] is message:
            return entry[1]
        decoded = super().deserialize(message)
        if len(self._decoded) >= DECODED_MAX:
            del self._decoded[next(iter(self._decoded))]  # the oldest
        self._decoded[id(message)] = (message, decoded)
        return decoded
