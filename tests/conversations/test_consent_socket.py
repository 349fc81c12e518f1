"""Consent on the socket: a pending member hears one ``conversation.request`` and nothing
else until ``conversation.accept``; then every socket of theirs hears the conversation."""

import pytest
from channels.db import database_sync_to_async

from conversations.services import conversation_direct_get_or_create
from tests.conftest import ws_connect

pytestmark = [pytest.mark.django_db(transaction=True)]

HEARD = {"message.new", "typing", "read", "unread", "presence"}


def _heard(events, cid):
    return [e for e in events if e["type"] in HEARD and e["data"].get("conversation_id") == cid]


async def _send(ws, cid, body, client_id):
    return await ws.request(
        "message.send", {"conversation_id": cid, "body": body, "client_id": client_id}
    )


async def test_a_request_is_silent_until_accepted_then_every_socket_hears_it(make_user):
    ann = await database_sync_to_async(make_user)()
    bob = await database_sync_to_async(make_user)()
    async with (
        ws_connect(ann, sync={}) as ann_ws,
        ws_connect(bob, sync={}) as bob_phone,
        ws_connect(bob, sync={}) as bob_laptop,
    ):
        conv, _ = await database_sync_to_async(conversation_direct_get_or_create)(
            user_id=ann.pk, other_user_id=bob.pk
        )
        cid = conv.pk
        for ws in (bob_phone, bob_laptop):
            request = await ws.event("conversation.request")
            assert request["data"] == {
                "conversation_id": cid, "kind": "direct", "title": "", "from_user_id": ann.pk,
                "last_seq": 0, "last_change_seq": 0,
            }  # fmt: skip
        assert (await _send(ann_ws, cid, "hello?", "a1"))["ok"]
        await ann_ws.request("typing.start", {"conversation_id": cid})
        for frame, data in (
            ("message.send", {"conversation_id": cid, "body": "hi", "client_id": "b1"}),
            ("typing.start", {"conversation_id": cid}),
            ("read", {"conversation_id": cid, "seq": 1}),
            ("read.markers", {"conversation_id": cid}),
        ):
            reply = await bob_phone.request(frame, data)
            assert reply["error"]["code"] == "not_accepted", (frame, reply)
        synced = await bob_phone.request("sync", {"conversations": {str(cid): 0}})
        assert synced["data"]["conversations"] == {}  # a request is not resumed
        for ws in (bob_phone, bob_laptop):
            events = await ws.drain(0.5)
            assert _heard(events, cid) == []
            assert [e for e in events if e["type"] == "conversation.request"] == []  # once
        # Accepted from the phone: both of bob's sockets join; ann hears it.
        reply = await bob_phone.request("conversation.accept", {"conversation_id": cid})
        assert reply["ok"], reply
        assert reply["data"]["conversation"]["state"] == "accepted"
        for ws in (bob_phone, bob_laptop):
            joined = await ws.event("conversation.joined")
            assert (joined["data"]["conversation_id"], joined["data"]["last_seq"]) == (cid, 1)
        accepted = await ann_ws.event("conversation.accepted")
        assert accepted["data"] == {"conversation_id": cid, "user_id": bob.pk}
        assert (await _send(ann_ws, cid, "welcome", "a2"))["ok"]
        for ws in (bob_phone, bob_laptop):
            got = await ws.event("message.new")
            assert (got["data"]["seq"], got["data"]["body"]) == (2, "welcome")
        assert (await _send(bob_phone, cid, "hi", "b1"))["ok"]
        assert (await ann_ws.event("message.new"))["data"]["body"] == "hi"
    # A new socket of bob's hears it from the start, and sync resumes it.
    async with ws_connect(bob, sync={str(cid): 0}) as again:
        assert again.sync_reply["data"]["conversations"][str(cid)]["replayed"] == 3


async def test_a_declined_request_tells_the_requester_with_a_code(make_user):
    ann = await database_sync_to_async(make_user)()
    bob = await database_sync_to_async(make_user)()
    conv, _ = await database_sync_to_async(conversation_direct_get_or_create)(
        user_id=ann.pk, other_user_id=bob.pk
    )
    async with ws_connect(ann, sync={}) as ann_ws, ws_connect(bob, sync={}) as bob_ws:
        bad = await bob_ws.request("conversation.decline", {"conversation_id": "x"})
        assert bad["error"]["code"] == "invalid"
        reply = await bob_ws.request("conversation.decline", {"conversation_id": conv.pk})
        assert reply["ok"] and reply["data"] == {"conversation_id": conv.pk}
        await bob_ws.event("conversation.left")
        members = await ann_ws.event("conversation.members")
        assert members["data"]["removed"] == [bob.pk]
        refused = await _send(ann_ws, conv.pk, "still there?", "a1")
        assert refused["error"]["code"] == "declined"
        again = await bob_ws.request("conversation.decline", {"conversation_id": conv.pk})
        assert again["error"]["code"] == "forbidden"  # not a member any more
        assert _heard(await bob_ws.drain(0.3), conv.pk) == []
