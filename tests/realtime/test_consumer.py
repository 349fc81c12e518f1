"""The WebSocket gateway: auth at connect, frame validation, routing, delivery."""

import asyncio
import json

import psycopg
import pytest
import redis
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import OperationalError

from conversations.services import conversation_direct_get_or_create, conversation_group_create
from tests.conftest import accept_all, ws_connect

pytestmark = [pytest.mark.django_db(transaction=True)]


async def _closed_with(headers, path="/ws"):
    from switchboard.asgi import application

    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await comm.connect(timeout=5)
    assert connected  # accepted, then closed with a code (a refused handshake has none)
    out = await comm.receive_output(timeout=5)
    await comm.wait()
    return out


async def test_unauthenticated_connection_is_closed_with_4401():
    out = await _closed_with([(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1")])
    assert out == {"type": "websocket.close", "code": 4401}


async def test_malformed_origin_is_closed_with_4403_not_a_crash():
    for origin in (b"http://127.0.0.1:99999", b"http://127.0.0.1:abc", b"http://[::1"):
        out = await _closed_with([(b"origin", origin)])
        assert out["code"] == 4403


async def test_bad_token_is_closed_with_4401():
    out = await _closed_with([(b"authorization", b"Token nope")])
    assert out["code"] == 4401


async def test_foreign_origin_is_closed_with_4403(make_user):
    from channels.db import database_sync_to_async

    from tests.conftest import token_for

    user = await database_sync_to_async(make_user)()
    token = await database_sync_to_async(token_for)(user)
    out = await _closed_with(
        [(b"origin", b"https://evil.example"), (b"authorization", f"Token {token}".encode())]
    )
    assert out["code"] == 4403


@pytest.mark.parametrize(
    ("host", "origin", "code"),
    [
        # Same scheme, host and port as the socket: allowed (no credentials: 4401).
        ("127.0.0.1:8000", "http://127.0.0.1:8000", 4401),
        ("localhost", "http://localhost", 4401),
        ("localhost", "http://localhost:80", 4401),
        # An allowed host, but another port, scheme or host than the socket's own.
        ("127.0.0.1:8000", "http://127.0.0.1:9999", 4403),
        ("127.0.0.1:8000", "http://127.0.0.1", 4403),
        ("127.0.0.1:8000", "https://127.0.0.1:8000", 4403),
        ("127.0.0.1:8000", "http://localhost:8000", 4403),
        # A Host that is not allowed, or none, is nobody's own origin.
        ("evil.example:8000", "http://evil.example:8000", 4403),
        (None, "http://127.0.0.1:8000", 4403),
        # CSRF_TRUSTED_ORIGINS: scheme and port exactly; a wildcard for subdomains.
        ("127.0.0.1:8000", "https://app.example.org", 4401),
        ("127.0.0.1:8000", "https://app.example.org:8443", 4403),
        ("127.0.0.1:8000", "http://app.example.org", 4403),
        ("127.0.0.1:8000", "https://a.b.example.net", 4401),
        ("127.0.0.1:8000", "https://example.net", 4401),  # as Django's CSRF check
        ("127.0.0.1:8000", "https://badexample.net", 4403),
        ("127.0.0.1:8000", "https://a.example.net:444", 4403),
    ],
)
async def test_origin_must_match_scheme_host_and_port(settings, host, origin, code):
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.org", "https://*.example.net"]
    headers = [(b"origin", origin.encode())]
    if host is not None:
        headers.append((b"host", host.encode()))
    out = await _closed_with(headers)
    assert out["code"] == code, (host, origin)


async def test_origin_behind_a_tls_proxy_is_https(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    host = (b"host", b"localhost")
    proto = (b"x-forwarded-proto", b"https")
    assert (await _closed_with([host, proto, (b"origin", b"https://localhost")]))["code"] == 4401
    assert (await _closed_with([host, proto, (b"origin", b"http://localhost")]))["code"] == 4403
    assert (await _closed_with([host, (b"origin", b"https://localhost")]))["code"] == 4403


async def test_ticket_is_single_use(make_user):
    from channels.db import database_sync_to_async

    from accounts.services import ws_ticket_issue

    user = await database_sync_to_async(make_user)()
    ticket = await database_sync_to_async(ws_ticket_issue)(user=user)
    async with ws_connect(headers=[], path=f"/ws?ticket={ticket}") as ws:
        assert ws.hello["data"]["user_id"] == user.pk
        assert ws.hello["data"]["auth"] == "ticket"
    out = await _closed_with([], path=f"/ws?ticket={ticket}")
    assert out["code"] == 4401


async def test_session_cookie_needs_allowed_origin(make_user):
    from channels.db import database_sync_to_async
    from django.test import Client

    user = await database_sync_to_async(make_user)()

    def login_cookie():
        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    sid = await database_sync_to_async(login_cookie)()
    cookie = f"sessionid={sid}".encode()
    host = (b"host", b"127.0.0.1:8000")
    async with ws_connect(
        headers=[host, (b"cookie", cookie), (b"origin", b"http://127.0.0.1:8000")]
    ) as ws:
        assert ws.hello["data"]["auth"] == "session"
    # Without an Origin header the cookie alone does not authenticate.
    out = await _closed_with([(b"cookie", cookie)])
    assert out["code"] == 4401


async def test_bad_frames_get_error_replies_and_socket_stays_open(make_user):
    from channels.db import database_sync_to_async

    user = await database_sync_to_async(make_user)()
    async with ws_connect(user) as ws:
        await ws.comm.send_to(text_data="{not json")
        assert (await ws.recv())["error"]["code"] == "bad_json"
        await ws.comm.send_to(text_data="[1, 2]")
        assert (await ws.recv())["error"]["code"] == "invalid"
        await ws.comm.send_to(text_data=json.dumps({"type": "nope", "ref": "r1"}))
        reply = await ws.recv()
        assert reply == {
            "type": "reply",
            "ref": "r1",
            "ok": False,
            "error": {"code": "unknown_type", "message": "Unknown frame type 'nope'."},
        }
        await ws.comm.send_to(text_data=json.dumps({"type": "ping"}))
        assert (await ws.recv())["error"]["code"] == "invalid"  # no ref
        await ws.comm.send_to(text_data=json.dumps({"type": "ping", "ref": "x", "data": [1]}))
        assert (await ws.recv())["error"]["code"] == "invalid"
        big = json.dumps({"type": "ping", "ref": "big", "data": {"pad": "x" * 20_000}})
        await ws.comm.send_to(text_data=big)
        reply = await ws.recv()
        assert (reply["error"]["code"], reply["ref"]) == ("too_large", None)  # as documented
        # Sizes are UTF-8 bytes: 5,000 characters, 20,000 bytes.
        emoji = json.dumps(
            {"type": "ping", "ref": "e", "data": {"pad": "😀" * 5_000}}, ensure_ascii=False
        )
        assert len(emoji) < 16_384 < len(emoji.encode())
        await ws.comm.send_to(text_data=emoji)
        assert (await ws.recv())["error"]["code"] == "too_large"
        await ws.comm.send_to(bytes_data=b"\x00\x01")
        assert (await ws.recv())["error"]["code"] == "invalid"
        await ws.comm.send_to(text_data=json.dumps({"type": [1]}))  # unhashable type, no ref
        assert (await ws.recv())["error"]["code"] == "invalid"
        reply = await ws.request("message.send", {"conversation_id": 1, "body": "a\x00b"})
        assert reply["error"]["code"] == "invalid"
        reply = await ws.request("message.send", {"conversation_id": "x", "body": 5})
        assert reply["error"]["code"] == "invalid"
        # Still open and working:
        assert (await ws.request("ping"))["ok"] is True


async def test_a_deeply_nested_frame_gets_an_error_reply_and_the_socket_stays_open(make_user):
    from channels.db import database_sync_to_async

    user = await database_sync_to_async(make_user)()
    async with ws_connect(user) as ws:
        # The issue's frame (unclosed), then valid JSON inside the frame size but deeper
        # than the parser's recursion limit: each gets one reply, none a traceback.
        frames = {
            "[" * 5_000: ("invalid", "bad_json"),
            "[" * 5_000 + "]" * 5_000: ("invalid",),
            '{"a":' * 2_500 + "1" + "}" * 2_500: ("invalid",),
        }
        for text, codes in frames.items():
            await ws.comm.send_to(text_data=text)
            reply = await ws.recv()
            assert reply["ref"] is None
            assert reply["error"]["code"] in codes, reply
        assert (await ws.request("ping"))["ok"] is True


async def test_frame_flood_closes_with_4429(make_user, settings):
    from channels.db import database_sync_to_async

    settings.LIMITS = {**settings.LIMITS, "WS_RATE_PER_SECOND": 1.0, "WS_RATE_BURST": 5}
    user = await database_sync_to_async(make_user)()
    async with ws_connect(user) as ws:
        for i in range(6):
            await ws.comm.send_to(text_data=json.dumps({"type": "ping", "ref": str(i)}))
        frames = []
        while True:
            out = await ws.comm.receive_output(timeout=3)
            if out["type"] == "websocket.close":
                break
            frames.append(json.loads(out["text"]))
        assert len(frames) == 5
        assert out["code"] == 4429


async def test_send_reaches_every_member_connection_in_order(make_user):
    from channels.db import database_sync_to_async

    ann, bob, cid = await database_sync_to_async(_pair)(make_user)
    async with (
        ws_connect(ann, sync={}) as ann_ws,
        ws_connect(bob, sync={}) as bob_phone,
        ws_connect(bob, sync={}) as bob_laptop,
    ):
        for i in range(5):
            reply = await ann_ws.request(
                "message.send", {"conversation_id": cid, "body": f"hi {i}", "client_id": f"c{i}"}
            )
            assert reply["ok"], reply
            assert reply["data"]["message"]["seq"] == i + 1
        for ws in (bob_phone, bob_laptop):
            got = [(await ws.event("message.new"))["data"] for _ in range(5)]
            assert [m["seq"] for m in got] == [1, 2, 3, 4, 5]
            assert [m["body"] for m in got] == [f"hi {i}" for i in range(5)]
            assert not [e for e in await ws.drain() if e["type"] == "message.new"]
        # The sender's connection had each one in its reply: no second copy as message.new.
        assert not [e for e in await ann_ws.drain() if e["type"] == "message.new"]


async def test_non_member_send_is_forbidden_and_nothing_is_pushed(make_user):
    from channels.db import database_sync_to_async

    from conversations.models import Message

    ann, bob, cid = await database_sync_to_async(_pair)(make_user)
    eve = await database_sync_to_async(make_user)()
    async with ws_connect(bob, sync={}) as bob_ws, ws_connect(eve, sync={}) as eve_ws:
        reply = await eve_ws.request(
            "message.send", {"conversation_id": cid, "body": "hi", "client_id": "e1"}
        )
        assert reply["error"]["code"] == "forbidden"
        reply = await eve_ws.request(
            "message.send", {"conversation_id": 999_999, "body": "hi", "client_id": "e2"}
        )
        assert reply["error"]["code"] == "not_found"
        assert not [e for e in await bob_ws.drain() if e["type"] == "message.new"]
    assert await Message.objects.filter(conversation_id=cid).acount() == 0


async def test_retried_client_id_is_stored_once(make_user):
    from channels.db import database_sync_to_async

    from conversations.models import Message

    ann, bob, cid = await database_sync_to_async(_pair)(make_user)
    async with ws_connect(ann, sync={}) as ws:
        frame = {"conversation_id": cid, "body": "once", "client_id": "same"}
        first = await ws.request("message.send", frame)
        second = await ws.request("message.send", frame)
        assert first["data"]["message"] == second["data"]["message"]
        assert (first["data"]["duplicate"], second["data"]["duplicate"]) == (False, True)
    assert await Message.objects.filter(conversation_id=cid).acount() == 1


async def test_resume_replays_exactly_what_was_missed(make_user):
    from channels.db import database_sync_to_async

    from conversations.services import message_send

    ann, bob, cid = await database_sync_to_async(_pair)(make_user)
    for i in range(1, 8):
        await database_sync_to_async(message_send)(
            sender_id=ann.pk, conversation_id=cid, body=f"m{i}", client_id=f"k{i}"
        )
    async with ws_connect(bob, sync={str(cid): 3}) as ws:
        assert ws.sync_reply["data"]["conversations"][str(cid)] == {
            "replayed": 4,
            "too_far": False,
            "latest_seq": 7,
            "changes_replayed": 0,
            "changes_too_far": False,
            "latest_change_seq": 0,
        }
        replayed = [e["data"]["seq"] for e in ws.events if e["type"] == "message.new"]
        assert replayed == [4, 5, 6, 7]
        ws.events.clear()
        await database_sync_to_async(message_send)(
            sender_id=ann.pk, conversation_id=cid, body="live", client_id="live"
        )
        live = await ws.event("message.new")
        assert live["data"]["seq"] == 8
        assert not [e for e in await ws.drain() if e["type"] == "message.new"]


async def test_a_cursor_past_the_head_is_clamped(make_user):
    from channels.db import database_sync_to_async

    from conversations.services import message_send

    ann, bob, cid = await database_sync_to_async(_pair)(make_user)
    await database_sync_to_async(message_send)(
        sender_id=ann.pk, conversation_id=cid, body="one", client_id="1"
    )
    async with ws_connect(bob, sync={str(cid): 50}) as ws:
        assert ws.sync_reply["data"]["conversations"][str(cid)]["latest_seq"] == 1
        await database_sync_to_async(message_send)(
            sender_id=ann.pk, conversation_id=cid, body="two", client_id="2"
        )
        assert (await ws.event("message.new"))["data"]["seq"] == 2


async def test_a_new_conversation_delivers_its_first_message(make_user):
    """The first message may be published before the socket subscribed to the group."""
    from channels.db import database_sync_to_async

    from conversations.services import message_send

    ann = await database_sync_to_async(make_user)()
    bob = await database_sync_to_async(make_user)()

    def create_and_send():
        conv = conversation_group_create(user_id=ann.pk, title="Now", member_ids=[bob.pk])
        accept_all(conv)
        message_send(sender_id=ann.pk, conversation_id=conv.pk, body="first", client_id="f")
        return conv.pk

    async with ws_connect(bob, sync={}) as ws:
        cid = await database_sync_to_async(create_and_send)()
        joined = await ws.event("conversation.joined")
        assert joined["data"] == {
            "conversation_id": cid, "kind": "group", "title": "Now", "role": "member",
            "last_seq": 0, "last_change_seq": 0,
        }  # fmt: skip
        got = await ws.event("message.new")
        assert (got["data"]["seq"], got["data"]["body"]) == (1, "first")
        assert not [e for e in await ws.drain() if e["type"] == "message.new"]


async def test_a_removed_member_stops_hearing_the_conversation(make_user):
    from channels.db import database_sync_to_async

    from conversations.services import member_remove, message_send

    owner = await database_sync_to_async(make_user)()
    gone = await database_sync_to_async(make_user)()
    conv = await database_sync_to_async(conversation_group_create)(
        user_id=owner.pk, title="T", member_ids=[gone.pk]
    )
    async with ws_connect(gone, sync={}) as ws:
        await database_sync_to_async(member_remove)(
            user_id=owner.pk, conversation_id=conv.pk, member_id=gone.pk
        )
        await ws.event("conversation.left")
        await database_sync_to_async(message_send)(
            sender_id=owner.pk, conversation_id=conv.pk, body="secret", client_id="s"
        )
        assert not [e for e in await ws.drain(0.5) if e["type"] == "message.new"]


async def test_resume_past_the_bound_says_too_far(make_user, settings):
    from channels.db import database_sync_to_async

    from conversations.services import message_send

    settings.LIMITS = {**settings.LIMITS, "RESUME_MAX_MESSAGES": 3}
    ann, bob, cid = await database_sync_to_async(_pair)(make_user)
    for i in range(1, 6):
        await database_sync_to_async(message_send)(
            sender_id=ann.pk, conversation_id=cid, body=f"m{i}", client_id=f"k{i}"
        )
    async with ws_connect(bob, sync={str(cid): 0}) as ws:
        assert ws.sync_reply["data"]["conversations"][str(cid)]["too_far"] is True
        too_far = [e for e in ws.events if e["type"] == "sync.too_far"]
        assert too_far[0]["data"] == {"conversation_id": cid, "after_seq": 0, "latest_seq": 5}


async def test_sync_of_a_foreign_conversation_replays_nothing(make_user):
    from channels.db import database_sync_to_async

    from conversations.services import message_send

    ann, bob, cid = await database_sync_to_async(_pair)(make_user)
    eve = await database_sync_to_async(make_user)()
    await database_sync_to_async(message_send)(
        sender_id=ann.pk, conversation_id=cid, body="secret", client_id="s"
    )
    async with ws_connect(eve, sync={str(cid): 0}) as ws:
        assert ws.sync_reply["data"]["conversations"] == {}
        assert not [e for e in ws.events if e["type"] == "message.new"]


async def test_gap_in_live_events_is_filled_from_the_database(make_user):
    """A push lost by the channel layer is recovered when the next one arrives."""
    from channels.db import database_sync_to_async

    from conversations.models import Conversation, Message

    ann, bob, cid = await database_sync_to_async(_pair)(make_user)

    def store_silently(seq):  # a message whose push never happened
        Conversation.objects.filter(pk=cid).update(last_seq=seq)
        Message.objects.create(conversation_id=cid, seq=seq, sender=ann, body="lost", client_id="x")

    async with ws_connect(bob, sync={str(cid): 0}) as ws:
        await database_sync_to_async(store_silently)(1)
        from conversations.services import message_send

        await database_sync_to_async(message_send)(
            sender_id=ann.pk, conversation_id=cid, body="after", client_id="y"
        )
        got = [(await ws.event("message.new"))["data"] for _ in range(2)]
        assert [(m["seq"], m["body"]) for m in got] == [(1, "lost"), (2, "after")]


async def test_pushes_that_cross_are_sent_in_order_without_a_read(make_user):
    """Two processes' pushes may arrive out of order: the later one waits for the earlier
    (``MESSAGE_REORDER_WAIT_SECONDS``) instead of reading the gap. The stored bodies differ
    from the pushed ones here, so a read would show."""
    from channels.db import database_sync_to_async

    from conversations.models import Conversation, Message
    from conversations.writer import Stored, message_event
    from core.events import asend_events

    ann, bob, cid = await database_sync_to_async(_pair)(make_user)

    def store(seq):
        Conversation.objects.filter(pk=cid).update(last_seq=seq)
        return Message.objects.create(
            conversation_id=cid, seq=seq, sender=ann, body=f"stored {seq}", client_id=f"c{seq}"
        )

    async with ws_connect(bob, sync={str(cid): 0}) as ws:
        pushes = []
        for seq in (1, 2):
            message = await database_sync_to_async(store)(seq)
            message.body = f"pushed {seq}"
            pushes.append(message_event(Stored(message=message, created=True)))
        await asend_events(items=[pushes[1]])  # 2 first, as from the other process
        await asyncio.sleep(0.01)
        await asend_events(items=[pushes[0]])
        got = [(await ws.event("message.new"))["data"] for _ in range(2)]
        assert [(m["seq"], m["body"]) for m in got] == [(1, "pushed 1"), (2, "pushed 2")]


async def test_new_group_member_gets_live_messages(make_user):
    from channels.db import database_sync_to_async

    from conversations.services import members_add, message_send

    owner = await database_sync_to_async(make_user)()
    joiner = await database_sync_to_async(make_user)()
    conv = await database_sync_to_async(conversation_group_create)(
        user_id=owner.pk, title="Team", member_ids=[]
    )
    async with ws_connect(joiner, sync={}) as ws:
        await database_sync_to_async(members_add)(
            user_id=owner.pk, conversation_id=conv.pk, member_ids=[joiner.pk]
        )
        # Not a contact of the owner: invited, and nothing else until it accepts.
        invited = await ws.event("conversation.request")
        assert invited["data"]["from_user_id"] == owner.pk
        reply = await ws.request("conversation.accept", {"conversation_id": conv.pk})
        assert reply["ok"] and reply["data"]["conversation"]["state"] == "accepted", reply
        joined = await ws.event("conversation.joined")
        assert joined["data"]["conversation_id"] == conv.pk
        await database_sync_to_async(message_send)(
            sender_id=owner.pk, conversation_id=conv.pk, body="welcome", client_id="w"
        )
        assert (await ws.event("message.new"))["data"]["body"] == "welcome"


async def test_edit_and_delete_are_pushed(make_user):
    from channels.db import database_sync_to_async

    ann, bob, cid = await database_sync_to_async(_pair)(make_user)
    async with ws_connect(ann, sync={}) as ann_ws, ws_connect(bob, sync={}) as bob_ws:
        sent = await ann_ws.request(
            "message.send", {"conversation_id": cid, "body": "tpyo", "client_id": "1"}
        )
        mid = sent["data"]["message"]["id"]
        assert (await bob_ws.request("message.edit", {"message_id": mid, "body": "x"}))["error"][
            "code"
        ] == "forbidden"
        edited = await ann_ws.request("message.edit", {"message_id": mid, "body": "typo"})
        assert edited["data"]["message"]["edited_at"]
        event = await bob_ws.event("message.updated")
        assert event["data"]["body"] == "typo"
        await ann_ws.request("message.delete", {"message_id": mid})
        event = await bob_ws.event("message.updated")
        assert event["data"]["deleted"] is True and event["data"]["body"] == ""


def _pair(make_user):
    ann, bob = make_user(), make_user()
    conv, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    accept_all(conv)
    return ann, bob, conv.pk


async def test_connections_per_user_are_bounded_with_4409(make_user, settings):
    from channels.db import database_sync_to_async

    from tests.conftest import token_for

    settings.LIMITS = {**settings.LIMITS, "WS_CONNECTIONS_PER_USER": 2}
    user = await database_sync_to_async(make_user)()
    token = await database_sync_to_async(token_for)(user)
    async with ws_connect(user), ws_connect(user):
        out = await _closed_with([(b"authorization", f"Token {token}".encode())])
        assert out["code"] == 4409
    # Once one closes, a new one is welcome again.
    async with ws_connect(user) as ws:
        assert ws.hello["data"]["user_id"] == user.pk


async def test_sockets_open_and_close_while_the_bus_redis_is_unreachable(make_user, settings):
    """The bus is down for this process: connect, resume and close still work.

    Presence, the per-user connection count and the open-socket statistic live in the bus;
    each is a guard or a statistic, so a socket is admitted without them (a reconnect storm
    that exhausts the bus pool must not turn into failed connections) and its disconnect
    ends cleanly.
    """
    import asyncio

    from channels.db import database_sync_to_async

    import core.redis as sb_redis
    from switchboard.embedded_redis import free_port

    ann, bob = await database_sync_to_async(make_user)(), await database_sync_to_async(make_user)()
    conv, _ = await database_sync_to_async(conversation_direct_get_or_create)(
        user_id=ann.pk, other_user_id=bob.pk
    )
    loop = asyncio.get_running_loop()
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    sb_redis._async_clients.pop(loop, None)
    try:
        async with ws_connect(ann, sync={str(conv.pk): 0}) as ws:
            assert ws.hello["type"] == "hello"
            assert ws.sync_reply["data"]["conversations"][str(conv.pk)]["latest_seq"] == 0
            assert (await ws.request("ping"))["ok"]
        assert ws.comm.future.done() and ws.comm.future.exception() is None
    finally:
        sb_redis._async_clients.pop(loop, None)


async def test_held_sockets_keep_no_database_wrapper_each(make_user):
    """Django's connections are per async context: anything on a socket's path that touches
    ``django.db.connection`` gives that socket a ``DatabaseWrapper`` of its own for as long
    as it is open (1.2 KB of each of 30,000 held connections)."""
    import gc
    from contextlib import AsyncExitStack

    from channels.db import database_sync_to_async
    from django.db.backends.base.base import BaseDatabaseWrapper

    def wrappers() -> int:
        gc.collect()
        return sum(isinstance(o, BaseDatabaseWrapper) for o in gc.get_objects())

    users = [await database_sync_to_async(make_user)() for _ in range(12)]
    async with AsyncExitStack() as stack:
        ws = await stack.enter_async_context(ws_connect(users[0], sync={}))
        await ws.request("ping")  # the loop's connections are open and the path is warm
        before = wrappers()
        for user in users[1:]:
            ws = await stack.enter_async_context(ws_connect(user, sync={}))
            await ws.request("ping")
        assert wrappers() - before <= 1


async def test_a_closing_socket_makes_no_thread_hop(make_user, monkeypatch):
    """Channels' ``websocket_disconnect`` ran ``close_old_connections`` through a thread
    pool for every closing socket (10 % of a server's time in the reconnect storm); the
    disconnect hooks' work is on the loop. Counted: work handed to any thread pool while
    a socket closes."""
    from concurrent.futures import ThreadPoolExecutor

    from channels.db import database_sync_to_async

    user = await database_sync_to_async(make_user)()
    submitted = []
    real_submit = ThreadPoolExecutor.submit

    def counted(self, fn, /, *args, **kwargs):  # the real submit, counted
        submitted.append(getattr(fn, "__qualname__", repr(fn)))
        return real_submit(self, fn, *args, **kwargs)

    async with ws_connect(user, sync={}) as ws:
        await ws.request("ping")
        monkeypatch.setattr(ThreadPoolExecutor, "submit", counted)
        await ws.comm.disconnect()
        await ws.comm.wait(timeout=5)
    monkeypatch.undo()
    assert submitted == []


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("the connection is lost"),
        OperationalError("connection refused"),
        redis.ConnectionError("Error 111 connecting"),
    ],
)
async def test_a_service_away_during_a_request_is_unavailable_not_internal(make_user, error):
    """PostgreSQL or Redis away under a handler: ``unavailable`` + ``retry_after`` (a retry
    will do), as REST's 503; a bug stays ``internal``."""
    from core import router

    async def away(conn, data):
        raise error

    async def bug(conn, data):
        raise KeyError("bug")

    router.handler("test.away")(away)
    router.handler("test.bug")(bug)
    try:
        user = await database_sync_to_async(make_user)()
        async with ws_connect(user) as ws:
            reply = await ws.request("test.away")
            assert reply["error"]["code"] == "unavailable", reply
            assert reply["error"]["retry_after"] >= 1
            assert (await ws.request("test.bug"))["error"]["code"] == "internal"
            assert (await ws.request("ping"))["ok"]  # the socket stays open
    finally:
        router.HANDLERS.pop("test.away", None)
        router.HANDLERS.pop("test.bug", None)
