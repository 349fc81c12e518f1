"""The naive Channels design, for ``make bench``'s baseline scenario (issue #8, limit (b)).

What a first Django Channels chat usually looks like, for comparison with Switchboard:

- the core ``channels_redis.core.RedisChannelLayer`` (lists polled per channel, not pub/sub);
- one socket per room: ``ws://host:port/ws?uid=<user>&c=<conversation>`` joins the group of
  that one conversation; no authentication (the user id is taken from the URL);
- a synchronous ``WebsocketConsumer``: every frame runs in Channels' one sync thread per
  process, and each ``message.send`` is an ORM transaction (lock the conversation, next
  ``seq``, ``Message`` insert) followed by ``group_send`` to the room.

It speaks the same frames as ``bench/baseline_relay.py`` (``hello``, ``sync`` reply,
``message.send`` -> ``message.new`` to the room then ``reply``), so the ``messaging`` load
generator drives it unchanged. Uses the bench database and Redis (key prefix
``REDIS_KEY_PREFIX``). Run: ``uvicorn bench.naive_channels:application``.
"""

import json
import os
from urllib.parse import parse_qs

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "switchboard.settings")
django_asgi_app = get_asgi_application()

from asgiref.sync import async_to_sync  # noqa: E402
from channels.generic.websocket import WebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402
from django.urls import path  # noqa: E402

from conversations.models import Conversation, Message  # noqa: E402

# The core layer instead of the pub/sub one Switchboard uses (read at first use).
settings.CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [settings.REDIS_URL],
            "prefix": f"{settings.REDIS_KEY_PREFIX}:naive:",
        },
    }
}


class RoomConsumer(WebsocketConsumer):
    """One socket per room; every message stored synchronously, then sent to the room."""

    def connect(self):
        query = parse_qs(self.scope["query_string"].decode())
        self.uid = int(query["uid"][0])
        self.cid = int(query["c"][0])
        self.room = f"room.{self.cid}"
        async_to_sync(self.channel_layer.group_add)(self.room, self.channel_name)
        self.accept()
        self.send(text_data='{"type":"hello","data":{}}')

    def disconnect(self, code):
        async_to_sync(self.channel_layer.group_discard)(self.room, self.channel_name)

    def receive(self, text_data=None, bytes_data=None):
        frame = json.loads(text_data or bytes_data or "{}")
        data = {}
        if frame.get("type") == "message.send":
            body = frame["data"]["body"]
            with transaction.atomic():
                conv = Conversation.objects.select_for_update().get(pk=self.cid)
                conv.last_seq += 1
                conv.save(update_fields=["last_seq"])
                Message.objects.create(
                    conversation=conv,
                    seq=conv.last_seq,
                    sender_id=self.uid,
                    body=body,
                    client_id=str(frame["data"].get("client_id", "")),
                )
            out = {
                "type": "message.new",
                "data": {
                    "conversation_id": self.cid,
                    "seq": conv.last_seq,
                    "sender_id": self.uid,
                    "body": body,
                },
            }
            async_to_sync(self.channel_layer.group_send)(
                self.room, {"type": "chat.message", "text": json.dumps(out)}
            )
            data = {"seq": conv.last_seq}
        reply = {"type": "reply", "ref": frame.get("ref"), "ok": True, "data": data}
        self.send(text_data=json.dumps(reply))

    def chat_message(self, event):
        self.send(text_data=event["text"])


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([path("ws", RoomConsumer.as_asgi())]),
    }
)
