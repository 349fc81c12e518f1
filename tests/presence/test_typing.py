"""Typing: reaches the other members only, members only, rate-limited without reply spam."""

import json

import pytest
from channels.db import database_sync_to_async

from conversations.services import conversation_group_create
from tests.conftest import accept_all, ws_connect

pytestmark = [pytest.mark.django_db(transaction=True)]


def _group(make_user):
    ann, bob, cat = make_user(), make_user(), make_user()
    conv = conversation_group_create(user_id=ann.pk, title="t", member_ids=[bob.pk, cat.pk])
    accept_all(conv)
    return ann, bob, cat, conv.pk


def _typing(events):
    return [e["data"] for e in events if e["type"] == "typing"]


async def test_typing_reaches_the_other_members_but_not_the_typist(make_user):
    ann, bob, cat, cid = await database_sync_to_async(_group)(make_user)
    async with (
        ws_connect(ann, sync={}) as ann_phone,
        ws_connect(ann, sync={}) as ann_laptop,
        ws_connect(bob, sync={}) as bob_ws,
        ws_connect(cat, sync={}) as cat_ws,
    ):
        reply = await ann_phone.request("typing.start", {"conversation_id": cid})
        assert reply["ok"] and reply["data"] == {"sent": True}
        for ws in (bob_ws, cat_ws):
            event = await ws.event("typing")
            assert event["data"] == {"conversation_id": cid, "user_id": ann.pk, "typing": True}
        await ann_phone.request("typing.stop", {"conversation_id": cid})
        assert (await bob_ws.event("typing"))["data"]["typing"] is False
        # The typist's own devices hear nothing of it.
        assert _typing(await ann_phone.drain(0.5)) == []
        assert _typing(await ann_laptop.drain(0.1)) == []


async def test_typing_in_a_foreign_conversation_is_forbidden(make_user):
    ann, bob, cat, cid = await database_sync_to_async(_group)(make_user)
    eve = await database_sync_to_async(make_user)()
    async with ws_connect(eve, sync={}) as eve_ws, ws_connect(bob, sync={}) as bob_ws:
        reply = await eve_ws.request("typing.start", {"conversation_id": cid})
        assert reply["error"]["code"] == "forbidden"
        reply = await eve_ws.request("typing.start", {"conversation_id": 987_654_321})
        assert reply["error"]["code"] == "not_found"
        reply = await eve_ws.request("typing.start", {"conversation_id": "x"})
        assert reply["error"]["code"] == "invalid"
        # Without a ref: no reply at all, and still nothing reaches the members.
        await eve_ws.comm.send_to(
            text_data=json.dumps({"type": "typing.start", "data": {"conversation_id": cid}})
        )
        assert [e for e in await eve_ws.drain(0.5) if e["type"] == "reply"] == []
        assert _typing(await bob_ws.drain(0.1)) == []


async def test_typing_over_the_rate_is_dropped_without_replies(make_user, settings):
    settings.LIMITS = {**settings.LIMITS, "TYPING_RATE_PER_SECOND": 0.01, "TYPING_RATE_BURST": 2}
    ann, bob, cat, cid = await database_sync_to_async(_group)(make_user)
    async with ws_connect(ann, sync={}) as ann_ws, ws_connect(bob, sync={}) as bob_ws:
        frame = json.dumps({"type": "typing.start", "data": {"conversation_id": cid}})
        for _ in range(6):
            await ann_ws.comm.send_to(text_data=frame)  # no ref: fire and forget
        assert (await ann_ws.request("ping"))["ok"]  # the socket is fine
        assert [e for e in await ann_ws.drain(0.5) if e["type"] == "reply"] == []
        assert len(_typing(await bob_ws.drain(0.5))) == 2  # the burst; the rest was dropped
        # With a ref, a dropped frame still gets its one reply, saying it was not sent.
        reply = await ann_ws.request("typing.start", {"conversation_id": cid})
        assert reply["ok"] and reply["data"] == {"sent": False}


async def test_a_removed_member_can_no_longer_type(make_user):
    from conversations.services import member_remove

    ann, bob, cat, cid = await database_sync_to_async(_group)(make_user)
    async with ws_connect(bob, sync={}) as bob_ws, ws_connect(cat, sync={}) as cat_ws:
        assert (await bob_ws.request("typing.start", {"conversation_id": cid}))["ok"]
        await cat_ws.event("typing")
        await database_sync_to_async(member_remove)(
            user_id=ann.pk, conversation_id=cid, member_id=bob.pk
        )
        await bob_ws.event("conversation.left")
        reply = await bob_ws.request("typing.start", {"conversation_id": cid})
        assert reply["error"]["code"] == "forbidden"
        assert _typing(await cat_ws.drain(0.5)) == []
