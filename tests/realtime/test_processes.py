"""Delivery across real server processes sharing Redis and PostgreSQL, and their crashes."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from conversations.models import Message
from conversations.services import conversation_direct_get_or_create
from switchboard.embedded_redis import RedisServer
from switchboard_client import Connection, ConnectionClosed
from tests.conftest import NetClient, accept_all, token_for
from tests.message_stream import MessageStream, assert_stored_once, live_both_ways

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _pair(make_user):
    ann, bob = make_user(), make_user()
    conv, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    accept_all(conv)
    return token_for(ann), token_for(bob), conv.pk


async def test_users_on_two_processes_converse(servers, make_user):
    a, b = servers(2)
    ann_token, bob_token, cid = await database_sync_to_async(_pair)(make_user)
    ann = await NetClient.open(a.ws_url, ann_token, sync={})
    bob = await NetClient.open(b.ws_url, bob_token, sync={})
    try:
        for i in range(20):
            reply = await ann.request(
                "message.send", {"conversation_id": cid, "body": f"a{i}", "client_id": f"a{i}"}
            )
            assert reply["ok"], reply
        got = [(await bob.event("message.new", timeout=10))["data"] for _ in range(20)]
        assert [m["seq"] for m in got] == list(range(1, 21))
        reply = await bob.request(
            "message.send", {"conversation_id": cid, "body": "back", "client_id": "b"}
        )
        assert reply["data"]["message"]["seq"] == 21
        # Ann's own messages were delivered to her connection by their replies.
        assert (await ann.event("message.new", timeout=10))["data"]["seq"] == 21
    finally:
        await ann.close()
        await bob.close()


async def test_accepting_a_request_on_one_process_subscribes_the_sockets_on_the_other(
    servers, make_user
):
    """Bob has a socket on each process; the request reaches both and nothing else does; he
    accepts on A; his socket on B joins the conversation and hears the next message, sent on A."""
    a, b = servers(2)

    def people():
        ann, bob = make_user(), make_user()
        return ann, bob, token_for(ann), token_for(bob)

    ann_user, bob_user, ann_token, bob_token = await database_sync_to_async(people)()
    ann = await NetClient.open(a.ws_url, ann_token, sync={})
    bob_a = await NetClient.open(a.ws_url, bob_token, sync={})
    bob_b = await NetClient.open(b.ws_url, bob_token, sync={})
    try:
        conv, _ = await database_sync_to_async(conversation_direct_get_or_create)(
            user_id=ann_user.pk, other_user_id=bob_user.pk
        )
        cid = conv.pk
        for ws in (bob_a, bob_b):
            assert (await ws.event("conversation.request", timeout=10))["data"]["from_user_id"] == (
                ann_user.pk
            )
        reply = await ann.request(
            "message.send", {"conversation_id": cid, "body": "may I?", "client_id": "a1"}
        )
        assert reply["ok"], reply
        reply = await bob_a.request("conversation.accept", {"conversation_id": cid})
        assert reply["ok"], reply
        joined = await bob_b.event("conversation.joined", timeout=10)
        assert (joined["data"]["conversation_id"], joined["data"]["last_seq"]) == (cid, 1)
        await bob_a.event("conversation.joined", timeout=10)
        reply = await ann.request(
            "message.send", {"conversation_id": cid, "body": "thanks", "client_id": "a2"}
        )
        assert reply["ok"], reply
        for ws in (bob_a, bob_b):
            got = await ws.event("message.new", timeout=10)
            assert (got["data"]["seq"], got["data"]["body"]) == (2, "thanks")
            # The message sent before the acceptance was never pushed (bob read it over REST).
            assert not [e for e in ws.events if e["type"] == "message.new"]
    finally:
        for ws in (ann, bob_a, bob_b):
            await ws.close()


async def test_sigkilled_process_clients_resume_on_the_other_without_loss(servers, make_user):
    a, b = servers(2)
    ann_token, bob_token, cid = await database_sync_to_async(_pair)(make_user)
    sender = await NetClient.open(b.ws_url, ann_token, sync={})
    reader = await NetClient.open(a.ws_url, bob_token, sync={})
    received: list[int] = []
    total = 60
    some_arrived = asyncio.Event()

    async def send_all():
        for i in range(total):
            reply = await sender.request(
                "message.send", {"conversation_id": cid, "body": f"m{i}", "client_id": f"m{i}"}
            )
            assert reply["ok"], reply
            await asyncio.sleep(0.01)

    async def read_until_dead():
        try:
            while True:
                frame = await reader.recv(timeout=20)
                if frame["type"] == "message.new":
                    received.append(frame["data"]["seq"])
                    if len(received) >= 15:
                        some_arrived.set()
        except Exception:  # the process died under us
            return

    sending = asyncio.create_task(send_all())
    reading = asyncio.create_task(read_until_dead())
    await asyncio.wait_for(some_arrived.wait(), 30)
    a.kill()  # SIGKILL: no disconnect handlers run
    await reading
    await sending
    # Reconnect to the surviving process and resume from the last seq we saw.
    resumed = await NetClient.open(
        b.ws_url, bob_token, sync={str(cid): received[-1] if received else 0}
    )
    try:
        received += [e["data"]["seq"] for e in resumed.events if e["type"] == "message.new"]
        assert received == list(range(1, total + 1))  # nothing lost, nothing twice, in order
        assert await Message.objects.filter(conversation_id=cid).acount() == total
    finally:
        await resumed.close()
        await sender.close()


@pytest.fixture
def bus_redis():
    """A private bus Redis (the servers' ``REDIS_URL``) that a test may kill and restart."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


def bus_requests(other_user_id: int) -> list[tuple[str, dict]]:
    """Frames whose handlers read the bus: a contact's presence, the live feed's numbers."""
    return [("presence.query", {"user_ids": [other_user_id]}), ("live.subscribe", {})]


def stored(cid: int) -> list[tuple[str, int]]:
    return list(Message.objects.filter(conversation_id=cid).values_list("client_id", "seq"))


async def test_a_bus_redis_sigkill_and_restart_loses_and_duplicates_nothing(
    servers, make_user, bus_redis
):
    """The bus (channel layer, presence, ...) dies mid-stream and comes back, empty, 1.5 s
    later on its port: every acknowledged message reaches the reader once, in order, and
    both processes push live again without a restart."""
    a, b = servers(2, REDIS_URL=bus_redis.url())
    ann_token, bob_token, cid = await database_sync_to_async(_pair)(make_user)
    # Ann sends on b, bob reads on a; the probe is another of ann's devices, on a.
    stream, probe = await MessageStream.started_with_probe(b, a, (ann_token, bob_token), cid)
    try:
        bus_frames = bus_requests(stream.reader_user_id)
        await stream.wait_received(20, timeout=20)
        logs_from = [p.log.stat().st_size for p in (a, b)]
        bus_redis.kill()  # SIGKILL: pub/sub connections and every key gone at once
        # Requests that need the bus, on an open socket: an error to retry, not silence.
        for frame_type, data in bus_frames:
            reply = await probe.request(frame_type, data, timeout=10)
            assert not reply["ok"] and reply["error"]["code"] == "unavailable", reply
            assert reply["error"]["retry_after"] >= 1
        await asyncio.sleep(1.5)
        await asyncio.to_thread(bus_redis.start)
        await stream.wait_acked(len(stream.acked) + 40, timeout=30)
        await stream.stop_sending()
        await stream.wait_received(len(stream.acked), timeout=20)
        stream.assert_exactly_once()
        for frame_type, data in bus_frames:  # the same socket, after
            assert (await probe.request(frame_type, data, timeout=10))["ok"]
    finally:
        await stream.close()
        await probe.close()
    assert_stored_once(await database_sync_to_async(stored)(cid), stream.acked)
    await live_both_ways(a, b, ann_token, bob_token, cid, after_seq=len(stream.acked))
    for server, start in zip((a, b), logs_from, strict=True):
        outage_log = server.log.read_text(errors="replace")[start:]
        assert "Traceback" not in outage_log, outage_log[-3000:]
        errors = [line for line in outage_log.splitlines() if "level=ERROR" in line]
        assert len(errors) <= 4, errors  # a line per kind, not one per push or retry


async def test_disconnect_mid_send_then_retry_stores_once(servers, make_user):
    (a,) = servers(1)
    ann_token, bob_token, cid = await database_sync_to_async(_pair)(make_user)
    ann = await NetClient.open(a.ws_url, ann_token, sync={})
    await ann.send_raw(
        {"type": "message.send", "ref": "1",
         "data": {"conversation_id": cid, "body": "maybe", "client_id": "flaky"}}
    )  # fmt: skip
    await ann.close()  # gone before the reply
    again = await NetClient.open(a.ws_url, ann_token, sync={str(cid): 0})
    try:
        replayed = [e["data"] for e in again.events if e["type"] == "message.new"]
        reply = await again.request(
            "message.send", {"conversation_id": cid, "body": "maybe", "client_id": "flaky"}
        )
        assert reply["ok"]
        rows = await database_sync_to_async(list)(Message.objects.filter(conversation_id=cid))
        assert len(rows) == 1  # stored once, by the first attempt or by the retry
        assert reply["data"]["message"]["seq"] == rows[0].seq == 1
        # Stored before the resume was answered: replayed, and the retry is its duplicate.
        # (Stored after it, the message comes live; either way the retry stores nothing.)
        if replayed:
            assert reply["data"]["duplicate"] is True
            assert [m["client_id"] for m in replayed] == ["flaky"]
    finally:
        await again.close()


async def test_a_client_that_vanishes_mid_burst_logs_no_error(servers, make_user):
    """Replies and pushes to a socket that just dropped are expected, not errors (#14)."""
    (server,) = servers(1)
    ann_token, bob_token, cid = await database_sync_to_async(_pair)(make_user)
    bob = await NetClient.open(server.ws_url, bob_token, sync={})
    ann = await NetClient.open(server.ws_url, ann_token, sync={})
    for i in range(40):  # queued on the server; the replies find the socket gone
        await ann.send_raw(
            {
                "type": "message.send",
                "ref": i,
                "data": {"conversation_id": cid, "body": f"v{i}", "client_id": f"v{i}"},
            }
        )
    await ann.recv()  # the first reply: the server is working through the burst
    ann.conn.abort()  # no close handshake: the TCP connection just drops
    await asyncio.sleep(1.0)
    stored = await database_sync_to_async(
        lambda: list(Message.objects.filter(conversation_id=cid).values_list("seq", flat=True))
    )()
    assert len(stored) >= 1
    got = [(await bob.event("message.new", timeout=10))["data"]["seq"] for _ in stored]
    assert got == sorted(stored) == list(range(1, len(stored) + 1))  # delivered all the same
    await bob.close()
    await asyncio.sleep(0.5)
    log = server.log.read_text()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]


async def test_a_ticket_in_the_websocket_url_never_reaches_the_server_log(servers, make_user):
    """uvicorn logs each accepted socket's URL, query string included (issue 12)."""
    from accounts.services import ws_ticket_issue

    (server,) = servers(1)
    user = await database_sync_to_async(make_user)()
    ticket = await database_sync_to_async(ws_ticket_issue)(user=user)
    conn = await Connection.open(f"{server.ws_url}?ticket={ticket}&x=1", open_timeout=10)
    assert conn.hello["auth"] == "ticket"
    await conn.close()
    await asyncio.sleep(0.5)
    log = server.log.read_text()
    assert "/ws?ticket=[redacted]&x=1" in log, log[-3000:]  # the line is there, blanked
    assert ticket not in log


async def test_a_client_flooding_frames_is_closed_4429_without_an_error(servers, make_user):
    """The frames queued behind the one that broke the rate are dropped quietly (Hardening 9): the
    socket is closing, so they get no second close (and no traceback each)."""
    (server,) = servers(1, LIMIT_WS_RATE_PER_SECOND="0.001", LIMIT_WS_RATE_BURST="5")
    token = await database_sync_to_async(lambda: token_for(make_user()))()
    ann = await NetClient.open(server.ws_url, token)
    for i in range(200):  # far past the burst: most wait behind the frame that breaks it
        await ann.conn.send_raw(json.dumps({"type": "ping", "ref": i}))
    replies = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            replies.append(await ann.recv(timeout=10))
    assert closed.value.code == 4429
    assert [r["ref"] for r in replies] == list(range(5))
    await asyncio.sleep(1.0)
    # The socket of a flooder closes; a fresh one works.
    again = await NetClient.open(server.ws_url, token)
    assert (await again.request("ping"))["ok"] is True
    await again.close()
    await asyncio.sleep(0.5)
    log = server.log.read_text()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
