"""Read markers: forward only, clamped, pushed; unread counts exact under concurrency."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from channels.db import database_sync_to_async
from django.db import connections

from conversations.selectors import conversation_list
from conversations.services import (
    conversation_direct_get_or_create,
    conversation_group_create,
    message_send,
)
from core.errors import Forbidden, Invalid, NotFound
from presence.receipts import read_mark
from presence.selectors import unread_summary
from tests.conftest import accept_all, api_as, ws_connect

pytestmark = [pytest.mark.django_db(transaction=True)]


def _pair_with_messages(make_user, n: int):
    ann, bob = make_user(), make_user()
    conv, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    accept_all(conv)
    for i in range(n):
        message_send(sender_id=ann.pk, conversation_id=conv.pk, body=f"m{i}", client_id=f"p{i}")
    return ann, bob, conv.pk


def test_markers_move_forward_only_and_clamp(make_user):
    ann, bob, cid = _pair_with_messages(make_user, 5)
    assert read_mark(user_id=bob.pk, conversation_id=cid, seq=3) == {
        "conversation_id": cid,
        "seq": 3,
        "moved": True,
    }
    assert read_mark(user_id=bob.pk, conversation_id=cid, seq=2)["seq"] == 3  # backwards: no-op
    assert read_mark(user_id=bob.pk, conversation_id=cid, seq=3)["moved"] is False
    assert read_mark(user_id=bob.pk, conversation_id=cid, seq=999) == {
        "conversation_id": cid,
        "seq": 5,  # past the last seq: clamped
        "moved": True,
    }
    with pytest.raises(Invalid):
        read_mark(user_id=bob.pk, conversation_id=cid, seq=-1)
    with pytest.raises(Invalid):
        read_mark(user_id=bob.pk, conversation_id=cid, seq="3")
    eve = make_user()
    with pytest.raises(Forbidden):
        read_mark(user_id=eve.pk, conversation_id=cid, seq=1)
    with pytest.raises(NotFound):
        read_mark(user_id=bob.pk, conversation_id=987_654_321, seq=1)


def test_read_rest_endpoints(make_user):
    ann, bob, cid = _pair_with_messages(make_user, 4)
    eve = make_user()
    response = api_as(bob).post(f"/api/conversations/{cid}/read", {"seq": 2}, format="json")
    assert response.status_code == 200 and response.json()["seq"] == 2
    markers = api_as(ann).get(f"/api/conversations/{cid}/read").json()
    assert markers == {
        "conversation_id": cid,
        "last_seq": 4,
        "markers": sorted(
            [{"user_id": ann.pk, "seq": 0}, {"user_id": bob.pk, "seq": 2}],
            key=lambda m: m["user_id"],
        ),
    }
    assert api_as(eve).get(f"/api/conversations/{cid}/read").status_code == 403
    bad = api_as(bob).post(f"/api/conversations/{cid}/read", {"seq": "x"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"
    assert api_as(bob).get("/api/unread").json() == {
        "total": 2,
        "conversations": [{"conversation_id": cid, "unread": 2}],
    }
    assert api_as(ann).get("/api/unread").json() == {"total": 0, "conversations": []}


async def test_read_is_pushed_to_members_and_unread_to_the_reader(make_user):
    ann, bob, cid = await database_sync_to_async(_pair_with_messages)(make_user, 3)
    async with (
        ws_connect(ann, sync={}) as ann_ws,
        ws_connect(bob, sync={}) as bob_phone,
        ws_connect(bob, sync={}) as bob_laptop,
    ):
        reply = await bob_phone.request("read", {"conversation_id": cid, "seq": 2})
        assert reply["data"] == {"conversation_id": cid, "seq": 2, "moved": True}
        event = await ann_ws.event("read")
        assert event["data"] == {"user_id": bob.pk, "conversation_id": cid, "seq": 2}
        for ws in (bob_phone, bob_laptop):  # every device of the reader
            unread = (await ws.event("unread"))["data"]
            assert (unread["conversation_id"], unread["unread"], unread["total"]) == (cid, 1, 1)
            assert unread["last_seq"] == 3  # the count covers the messages up to seq 3
        # A message from someone else: no unread push (clients count message.new past
        # last_seq themselves), for the member or for the sender.
        frame = {"conversation_id": cid, "body": "x", "client_id": "x"}
        await ann_ws.request("message.send", frame)
        assert (await bob_laptop.event("message.new"))["data"]["seq"] == 4
        for ws in (ann_ws, bob_laptop):
            assert [e for e in await ws.drain(0.5) if e["type"] == "unread"] == []
        # Backwards: a no-op, no events.
        reply = await bob_phone.request("read", {"conversation_id": cid, "seq": 1})
        assert reply["data"]["moved"] is False
        assert [e for e in await ann_ws.drain(0.5) if e["type"] == "read"] == []
        markers = await ann_ws.request("read.markers", {"conversation_id": cid})
        assert {m["user_id"]: m["seq"] for m in markers["data"]["markers"]} == {
            ann.pk: 0,
            bob.pk: 2,
        }
        summary = await bob_phone.request("unread.get")
        assert summary["data"]["total"] == 2


async def test_read_frames_from_non_members_are_forbidden(make_user):
    ann, bob, cid = await database_sync_to_async(_pair_with_messages)(make_user, 1)
    eve = await database_sync_to_async(make_user)()
    async with ws_connect(eve, sync={}) as ws:
        assert (await ws.request("read", {"conversation_id": cid, "seq": 1}))["error"][
            "code"
        ] == "forbidden"
        assert (await ws.request("read.markers", {"conversation_id": cid}))["error"][
            "code"
        ] == "forbidden"
        assert (await ws.request("read", {"conversation_id": cid}))["error"]["code"] == "invalid"


def _in_thread(func):
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            connections.close_all()

    return run


async def test_unread_counts_are_exact_under_concurrent_sends_and_reads(make_user):
    """Two senders and a reader race; a client following the protocol's rule (the pushed
    count with the highest version, plus the message.new from others past its last_seq)
    ends on the true counts everywhere."""

    def setup():
        ann, bob, cat = make_user(), make_user(), make_user()
        group = conversation_group_create(user_id=ann.pk, title="g", member_ids=[bob.pk, cat.pk])
        direct, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
        accept_all(group), accept_all(direct)
        return ann, bob, cat, group.pk, direct.pk

    ann, bob, cat, gid, did = await database_sync_to_async(setup)()
    per_sender = 12

    @_in_thread
    def send(sender, cid, tag):
        for i in range(per_sender):
            message_send(sender_id=sender.pk, conversation_id=cid, body="b", client_id=f"{tag}{i}")

    @_in_thread
    def read():
        for seq in range(1, 3 * per_sender, 3):
            read_mark(user_id=bob.pk, conversation_id=gid, seq=seq)

    async with ws_connect(bob, sync={}) as bob_ws:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(4) as pool:
            await asyncio.gather(
                loop.run_in_executor(pool, send, ann, gid, "a"),
                loop.run_in_executor(pool, send, cat, gid, "c"),
                loop.run_in_executor(pool, send, ann, did, "d"),
                loop.run_in_executor(pool, read),
            )
        truth = await database_sync_to_async(unread_summary)(user_id=bob.pk)
        events = await bob_ws.drain(1.5)
    listed = {c["id"]: c for c in await database_sync_to_async(conversation_list)(user_id=bob.pk)}
    pushes = [e["data"] for e in events if e["type"] == "unread"]
    assert pushes and all(p["conversation_id"] == gid for p in pushes)  # only after reads
    latest = max(pushes, key=lambda p: p["version"])
    news = [e["data"] for e in events if e["type"] == "message.new"]
    counted = {
        gid: latest["unread"]
        + sum(1 for m in news if m["conversation_id"] == gid and m["seq"] > latest["last_seq"]),
        did: sum(1 for m in news if m["conversation_id"] == did),  # never read: all of them
    }
    assert counted == {gid: listed[gid]["unread"], did: listed[did]["unread"]}
    assert counted[gid] + counted[did] == truth["total"]
