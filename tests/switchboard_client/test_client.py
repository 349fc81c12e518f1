"""switchboard_client.Client against a real server process over real sockets."""

import asyncio
import os
import signal
import time

import pytest
from channels.db import database_sync_to_async

from conversations.services import conversation_direct_get_or_create, message_edit, message_send
from switchboard_client import (
    Client,
    ConnectError,
    Connection,
    Options,
    RequestError,
    State,
    ticket_source,
    token_login,
    ws_url,
)
from tests.conftest import accept_all, token_for
from tests.switchboard_client.conftest import RESUME_MAX_CHANGES, RESUME_MAX_MESSAGES

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PASSWORD = "correct-horse-battery-9"
# Short timings: the tests wait for what they cause, not for the defaults.
FAST = Options(heartbeat_interval=0.5, heartbeat_timeout=1.0, backoff_base=0.1, backoff_max=0.5)


def _pair(make_user):
    ann, bob = make_user(), make_user()
    conv, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    accept_all(conv)
    return ann, bob, token_for(ann), token_for(bob), conv.pk


async def _until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_token_auth_request_reply_and_typed_errors(server, make_user):
    _, _, ann_token, _, cid = await database_sync_to_async(_pair)(make_user)
    async with Client(server.ws_url, token=ann_token, options=FAST) as ann:
        assert ann.state is State.OPEN and ann.hello["auth"] == "token"
        assert isinstance((await ann.request("ping"))["ts"], float)
        with pytest.raises(RequestError) as unknown:
            await ann.request("no.such.type")
        assert unknown.value.code == "unknown_type" and not unknown.value.retryable
        with pytest.raises(RequestError) as invalid:
            await ann.request(
                "message.send", {"conversation_id": cid, "body": "", "client_id": "x"}
            )
        assert invalid.value.code == "invalid"
        with pytest.raises(RequestError) as forbidden:
            await ann.request("read.markers", {"conversation_id": cid + 1000})
        assert forbidden.value.code in ("forbidden", "not_found")


async def test_a_login_and_a_ticket_connect_and_a_bad_token_is_unauthorized(server, make_user):
    user = await database_sync_to_async(make_user)()
    token = await token_login(server.url, user.username, PASSWORD)
    async with Client(server.ws_url, ticket=ticket_source(server.url, token)) as client:
        assert client.hello["auth"] == "ticket" and client.user_id == user.pk
    assert client.state is State.CLOSED
    assert ws_url(server.url) == server.ws_url

    refused = Client(server.ws_url, token="not-a-token", options=FAST)
    with pytest.raises(ConnectError) as exc:
        await refused.connect(timeout=20)
    assert exc.value.close_code == 4401 and refused.state is State.UNAUTHORIZED
    with pytest.raises(ConnectError):
        await Connection.open(server.ws_url, token="not-a-token")


async def test_subscriptions_and_handlers_get_each_message_once_in_order(server, make_user):
    _, _, ann_token, bob_token, cid = await database_sync_to_async(_pair)(make_user)
    async with (
        Client(server.ws_url, token=ann_token, options=FAST) as ann,
        Client(server.ws_url, token=bob_token, options=FAST) as bob,
    ):
        seen: list[int] = []
        bob.on("message.new", lambda m, frame: seen.append(m["seq"]))
        with bob.subscribe("message.new") as events:
            sent = [ann.send(cid, f"hello {i}") for i in range(5)]
            stored = [await asyncio.wait_for(s.done, 20) for s in sent]
            assert [m["seq"] for m in stored] == [1, 2, 3, 4, 5]
            got = [await events.get(timeout=20) for _ in range(5)]
        assert [(e.type, e.data["body"]) for e in got] == [
            ("message.new", f"hello {i}") for i in range(5)
        ]
        assert seen == [1, 2, 3, 4, 5] and bob.cursor(cid) == 5
        # The sender's own deliveries came in its replies: its cursor moved with them.
        assert ann.cursor(cid) == 5 and ann.pending_messages() == []
        with pytest.raises(StopAsyncIteration):
            await events.get(timeout=1)


async def test_resume_after_the_server_is_killed_and_restarted(server, make_user):
    """Nothing lost, nothing twice, in order: messages sent before, while the server is down
    (the sender's outbox, and one stored by another process), and after."""
    ann_user, _, ann_token, bob_token, cid = await database_sync_to_async(_pair)(make_user)
    async with (
        Client(server.ws_url, token=ann_token, options=FAST) as ann,
        Client(server.ws_url, token=bob_token, options=FAST) as bob,
    ):
        got: list[tuple[int, str]] = []
        bob.on("message.new", lambda m, frame: got.append((m["seq"], m["body"])))
        reopened: list[bool] = []
        bob.on_open(lambda opened: reopened.append(opened.reconnect))
        for i in range(3):
            await asyncio.wait_for(ann.send(cid, f"before {i}").done, 20)
        await _until(lambda: len(got) == 3)

        server.kill()  # SIGKILL: no close frames
        await _until(lambda: ann.state is State.RECONNECTING and bob.state is State.RECONNECTING)
        offline = [ann.send(cid, f"offline {i}") for i in range(3)]
        await database_sync_to_async(message_send)(
            sender_id=ann_user.pk, conversation_id=cid, body="elsewhere", client_id="elsewhere"
        )
        server.start()  # the same port

        stored = [await asyncio.wait_for(s.done, 30) for s in offline]
        assert [m["seq"] for m in stored] == [5, 6, 7]
        await asyncio.wait_for(ann.send(cid, "after").done, 20)
        await _until(lambda: len(got) >= 8)
        await asyncio.sleep(0.3)  # a late duplicate would show here
        assert got == [
            (1, "before 0"), (2, "before 1"), (3, "before 2"), (4, "elsewhere"),
            (5, "offline 0"), (6, "offline 1"), (7, "offline 2"), (8, "after"),
        ]  # fmt: skip
        assert reopened == [True] and bob.attempt == 0 and ann.cursor(cid) == 8


async def test_a_silent_server_is_noticed_by_the_heartbeat(server, make_user):
    """SIGSTOP keeps the TCP connection open: only the missing ping reply tells."""
    _, _, ann_token, _, _ = await database_sync_to_async(_pair)(make_user)
    async with Client(server.ws_url, token=ann_token, options=FAST) as ann:
        states: list[State] = []
        ann.on_state(lambda state, previous: states.append(state))
        os.kill(server.pid, signal.SIGSTOP)
        try:
            frozen_at = time.monotonic()
            with pytest.raises(RequestError) as late:  # well before the heartbeat gives up
                await ann.request("ping", timeout=0.2)
            assert late.value.code == "timeout" and late.value.retryable
            await _until(lambda: ann.state is State.RECONNECTING, timeout=10)
            noticed = time.monotonic() - frozen_at
        finally:
            os.kill(server.pid, signal.SIGCONT)
        # interval + timeout = 1.5 s, with slack for a loaded machine.
        assert noticed < 6, noticed
        assert ann.last_close == (4000, "heartbeat timeout")
        await ann.wait_open(timeout=30)
        assert states[0] is State.RECONNECTING and states[-1] is State.OPEN
        assert isinstance((await ann.request("ping"))["ts"], float)


def _stored(sender_id: int, cid: int, count: int) -> list[int]:
    return [
        message_send(sender_id=sender_id, conversation_id=cid, body=f"m{i}", client_id=f"m{i}")[
            0
        ].pk
        for i in range(count)
    ]


async def test_too_far_behind_is_a_gap_and_too_many_changes_make_it_stale(server, make_user):
    """More missed than the server replays: the client says so (on_gap, on_stale), moves
    its cursors to the head, and hears what comes next live."""
    ann_user, _, _, bob_token, cid = await database_sync_to_async(_pair)(make_user)
    missed = RESUME_MAX_MESSAGES + 2
    ids = await database_sync_to_async(_stored)(ann_user.pk, cid, missed)
    bob = Client(server.ws_url, token=bob_token, options=FAST)
    gaps, stale, got = [], [], []
    bob.on_gap(gaps.append)
    bob.on_stale(stale.append)
    bob.on("message.new", lambda m, frame: got.append(m["seq"]))
    bob.set_cursor(cid, 0, 0)
    await bob.connect(timeout=20)
    try:
        assert [(g["conversation_id"], g["after_seq"], g["latest_seq"]) for g in gaps] == [
            (cid, 0, missed)
        ]
        assert got == [] and bob.cursor(cid) == missed
        await bob.close()

        edits = RESUME_MAX_CHANGES + 1
        for pk in ids[:edits]:
            await database_sync_to_async(message_edit)(user_id=ann_user.pk, message_id=pk, body="x")
        await bob.connect(timeout=20)
        assert [
            (s["conversation_id"], s["after_change_seq"], s["latest_change_seq"]) for s in stale
        ] == [(cid, 0, edits)]
        assert bob.change_cursor(cid) == edits

        await database_sync_to_async(message_send)(
            sender_id=ann_user.pk, conversation_id=cid, body="live", client_id="live"
        )
        await _until(lambda: got == [missed + 1])
    finally:
        await bob.close()
