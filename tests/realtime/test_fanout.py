"""The fan-out in one pass: events written to idle sockets by the channel layer's task.

``realtime.consumer.GatewayConsumer._event_now`` and the apps' ``event_hook_now`` hooks
decide synchronously; whatever they cannot decide goes through the socket's inbox as
before. These tests hold the two paths to the same outcome: every message once, in order.
"""

import asyncio
import socket

import pytest
from channels.db import database_sync_to_async
from wsproto import ConnectionType
from wsproto.connection import Connection as WsConnection
from wsproto.events import TextMessage

from conversations.gateway import ConversationState, message_new_now
from conversations.services import conversation_direct_get_or_create
from realtime.codec import wire_text
from switchboard_client import Connection
from tests.conftest import accept_all, token_for


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_built_frame_reads_back_as_the_text_it_carries(size):
    """Header lengths 7, 16 and 64 bits (RFC 6455, 5.2), read by a client-side parser."""
    text = ("é" * size)[:size]  # multi-byte: the length is of the UTF-8, not the characters
    client = WsConnection(ConnectionType.CLIENT)
    client.receive_data(wire_text(text))
    events = list(client.events())
    assert len(events) == 1 and isinstance(events[0], TextMessage)
    assert events[0].data == text and events[0].message_finished


class _Busy:
    """A connection whose socket cannot take a frame now (its transport's buffer is full)."""

    user_id = 1

    def __init__(self) -> None:
        self._state = ConversationState()
        self._state.joined.add(5)
        self._state.sequencer.mark_synced()
        self._state.sequencer.resume(5, after_seq=3, head=3, too_far=False)

    def state(self, kind):
        assert kind is ConversationState
        return self._state

    def send_event_now(self, message) -> bool:
        return False


def test_a_socket_that_cannot_take_the_frame_now_changes_nothing():
    """None hands the event to the inbox: the cursor must not have moved, or the queued
    event would then be dropped as a duplicate and the client would never see it."""
    conn = _Busy()
    message = {"event": "message.new", "conversation_id": 5, "seq": 4, "data": {}}
    assert message_new_now(conn, message) is None
    assert conn._state.sequencer.cursor(5) == 3
    # A gap is not decided here either (it needs a read).
    assert message_new_now(conn, {**message, "seq": 9}) is None
    assert conn._state.sequencer.cursor(5) == 3
    # A duplicate is dropped here, without a frame.
    assert message_new_now(conn, {**message, "seq": 3}) is True


def _pair(make_user):
    ann, bob = make_user(), make_user()
    conv, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    accept_all(conv)
    return token_for(ann), token_for(bob), conv.pk


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
async def test_a_reader_that_stalls_gets_every_message_once_in_order(servers, make_user):
    """Bob stops reading while Ann sends ~7 MB (~14 MB of pushes): the server's buffer for
    Bob fills, so the synchronous write refuses and pushes queue behind the one waiting to be
    written; when Bob reads again every message arrives, once, in order, and the server
    logged no error."""
    (a,) = servers(1, LIMIT_WS_RATE_PER_SECOND="100000", LIMIT_WS_RATE_BURST="100000")
    ann_token, bob_token, cid = await database_sync_to_async(_pair)(make_user)
    count, body = 600, "€" * 4000  # 12 KB each
    host, port = a.ws_url.split("//")[1].split("/")[0].split(":")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((host, int(port)))
    raw.setblocking(False)
    bob = await Connection.open(a.ws_url, token=bob_token, sock=raw, max_queue=2)
    ann = await Connection.open(a.ws_url, token=ann_token)
    try:
        for ws in (ann, bob):
            assert ws.hello_frame["type"] == "hello"
            # The reply, past any presence event that races it (kept for recv).
            assert (await ws.reply("sync", {"conversations": {}}))["ok"]

        async def ann_reads_her_replies() -> None:
            # Ann reads while she sends: her replies and her own pushes (~7 MB) would
            # otherwise fill her socket both ways, the server's writes to her and her writes
            # to it, and both ends would wait for ever (the client's queue stops reading
            # after max_queue frames). Only Bob is the reader that stalls.
            acked = 0
            while acked < count:
                frame = await ann.recv()
                if frame["type"] == "reply":
                    assert frame["ok"], frame
                    acked += 1

        reader = asyncio.create_task(ann_reads_her_replies())
        try:
            async with asyncio.timeout(120):
                for i in range(count):
                    # Connection.send writes UTF-8 unescaped: 12 KB, under the frame limit.
                    await ann.send(
                        {
                            "type": "message.send",
                            "ref": i,
                            "data": {"conversation_id": cid, "body": body, "client_id": f"c{i}"},
                        }
                    )
                await reader
        finally:
            reader.cancel()
        seqs = []
        async with asyncio.timeout(60):
            while len(seqs) < count:
                frame = await bob.recv()
                if frame["type"] == "message.new":
                    assert frame["data"]["body"] == body
                    seqs.append(frame["data"]["seq"])
        assert seqs == list(range(1, count + 1))
    finally:
        await ann.close()
        await bob.close()
    log = a.log.read_text()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
