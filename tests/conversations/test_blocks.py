"""A block made from a conversation: the blocked person cannot start a new direct
conversation with the blocker (REST), nor send or accept over the socket; unblocking
restores both."""

import pytest
from channels.db import database_sync_to_async

from conversations.models import Conversation
from tests.conftest import api_as, ws_connect

pytestmark = [pytest.mark.django_db(transaction=True)]


def _direct(client, user_id):
    return client.post("/api/conversations", {"kind": "direct", "user_id": user_id}, format="json")


async def test_a_person_i_blocked_cannot_start_or_use_a_direct_conversation(make_user):
    ann = await database_sync_to_async(make_user)()
    bob = await database_sync_to_async(make_user)()
    cat = await database_sync_to_async(make_user)()

    def setup():
        # ann <-> bob: accepted both ways; cat -> ann: a request ann has not answered.
        cid = _direct(api_as(ann), bob.pk).json()["id"]
        assert api_as(bob).post(f"/api/conversations/{cid}/accept").status_code == 200
        pending = _direct(api_as(cat), ann.pk).json()["id"]
        for other in (bob, cat):  # ann blocks both, as the conversation header does
            made = api_as(ann).post("/api/meet/blocks", {"user_id": other.pk}, format="json")
            assert made.status_code == 201
        return cid, pending

    cid, pending = await database_sync_to_async(setup)()

    def rest_refusals():
        before = Conversation.objects.count()
        for client, other in ((api_as(bob), ann), (api_as(cat), ann), (api_as(ann), bob)):
            response = _direct(client, other.pk)
            assert (response.status_code, response.json()["code"]) == (403, "blocked")
        assert Conversation.objects.count() == before

    await database_sync_to_async(rest_refusals)()
    async with ws_connect(bob, sync={}) as bob_ws, ws_connect(ann, sync={}) as ann_ws:
        sent = await bob_ws.request(
            "message.send", {"conversation_id": cid, "body": "hi", "client_id": "b1"}
        )
        assert sent["error"]["code"] == "blocked"
        accepted = await ann_ws.request("conversation.accept", {"conversation_id": pending})
        assert accepted["error"]["code"] == "blocked"

    def unblocked():
        assert api_as(ann).delete(f"/api/meet/blocks/{bob.pk}").status_code == 204
        again = _direct(api_as(bob), ann.pk)
        assert (again.status_code, again.json()["id"]) == (200, cid)

    await database_sync_to_async(unblocked)()
    async with ws_connect(bob, sync={}) as bob_ws:
        sent = await bob_ws.request(
            "message.send", {"conversation_id": cid, "body": "hi", "client_id": "b2"}
        )
        assert sent["ok"], sent
