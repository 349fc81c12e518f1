"""Blocks are not permanent (list, unblock) and "keep in touch" turns a match into a direct
conversation when both sides chose it."""

import pytest
from channels.db import database_sync_to_async

from conversations.models import Conversation, Membership
from conversations.services import (
    conversation_direct_get_or_create,
    membership_decline,
    message_send,
)
from core.errors import Blocked, Forbidden, Invalid
from core.event_schema import EVENT_SCHEMAS
from core.redis import bus
from matching import pool, services
from matching.models import Match
from relations.models import Block
from tests.conftest import accept_all, api_as, ws_connect

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def meet_user(make_user):
    def make(interests=("chess",), region="europe", **kw):
        return make_user(interests=list(interests), region=region, **kw)

    return make


def _match(a, b) -> int:
    assert services.match_enter(user_id=a.pk)["status"] == "waiting"
    got = services.match_enter(user_id=b.pk)
    assert got["status"] == "matched"
    return got["match_id"]


def test_blocks_are_listed_newest_first_and_unblock_takes_mine_back(meet_user):
    ann, bob, cat = meet_user(display_name="Ann"), meet_user(display_name="Bob"), meet_user()
    client = api_as(ann)
    assert client.get("/api/meet/blocks").json() == {"blocks": []}
    for other in (bob, cat):
        assert (
            client.post("/api/meet/blocks", {"user_id": other.pk}, format="json").status_code == 201
        )
    Block.objects.create(blocker=cat, blocked=ann)  # theirs: not mine to list or take back
    rows = client.get("/api/meet/blocks").json()["blocks"]
    assert [r["user_id"] for r in rows] == [cat.pk, bob.pk]
    assert rows[1]["display_name"] == "Bob" and rows[1]["username"] == bob.username
    assert client.delete(f"/api/meet/blocks/{bob.pk}").status_code == 204
    again = client.delete(f"/api/meet/blocks/{bob.pk}")
    assert (again.status_code, again.json()["code"]) == (404, "not_found")
    assert [r["user_id"] for r in client.get("/api/meet/blocks").json()["blocks"]] == [cat.pk]
    # Unblocking cat leaves cat's own block on me in place.
    assert client.delete(f"/api/meet/blocks/{cat.pk}").status_code == 204
    assert Block.objects.filter(blocker=cat, blocked=ann).exists()
    assert client.delete("/api/meet/blocks/987654").status_code == 404


def test_after_unblock_the_two_may_meet_and_message_again(meet_user):
    ann, bob = meet_user(), meet_user()
    conv, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    accept_all(conv)
    services.block_create(user_id=ann.pk, blocked_id=bob.pk)
    assert services.match_enter(user_id=ann.pk)["status"] == "waiting"
    assert services.match_enter(user_id=bob.pk)["status"] == "waiting"  # never paired
    with pytest.raises(Blocked):
        message_send(sender_id=bob.pk, conversation_id=conv.pk, body="hi", client_id="b1")
    services.match_cancel(user_id=ann.pk)
    services.match_cancel(user_id=bob.pk)
    services.block_remove(user_id=ann.pk, blocked_id=bob.pk)
    # The avoid sets (a cache holding the block forever) were dropped, to be rebuilt.
    assert not bus().exists(pool.avoid_key(ann.pk), pool.avoid_key(bob.pk))
    assert services.match_enter(user_id=ann.pk)["status"] == "waiting"
    assert services.match_enter(user_id=bob.pk)["status"] == "matched"
    message, created = message_send(
        sender_id=bob.pk, conversation_id=conv.pk, body="hi again", client_id="b2"
    )
    assert created and message.body == "hi again"
    with pytest.raises(Invalid):
        services.block_remove(user_id=ann.pk, blocked_id="bob")


def test_keep_in_touch_needs_both_and_opens_one_accepted_conversation(meet_user):
    ann, bob, eve = meet_user(), meet_user(), meet_user(region="asia", language="fr")
    match_id = _match(ann, bob)
    with pytest.raises(Forbidden):
        services.match_keep(user_id=eve.pk, match_id=match_id)
    first = services.match_keep(user_id=ann.pk, match_id=match_id)
    assert first == {"match_id": match_id, "kept": False, "conversation_id": None}
    assert services.match_keep(user_id=ann.pk, match_id=match_id) == first  # again: no-op
    assert not Conversation.objects.filter(direct_key__isnull=False).exists()
    second = services.match_keep(user_id=bob.pk, match_id=match_id)
    assert second["kept"] is True
    conv = Conversation.objects.get(pk=second["conversation_id"])
    assert conv.kind == "direct"
    states = dict(Membership.objects.filter(conversation=conv).values_list("user_id", "state"))
    assert states == {ann.pk: "accepted", bob.pk: "accepted"}  # both consented
    assert Match.objects.get(pk=match_id).conversation_id == conv.pk
    assert services.match_keep(user_id=ann.pk, match_id=match_id) == second
    services.match_skip(user_id=bob.pk, match_id=match_id)
    with pytest.raises(Invalid):  # only during the match
        services.match_keep(user_id=ann.pk, match_id=match_id)
    with pytest.raises(Invalid):
        services.match_keep(user_id=ann.pk, match_id="x")


def test_keep_in_touch_reopens_a_conversation_declined_before(meet_user):
    ann, bob = meet_user(), meet_user()
    conv, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    membership_decline(user_id=bob.pk, conversation_id=conv.pk)
    match_id = _match(ann, bob)
    services.match_keep(user_id=bob.pk, match_id=match_id)
    got = services.match_keep(user_id=ann.pk, match_id=match_id)
    assert got["conversation_id"] == conv.pk
    states = dict(Membership.objects.filter(conversation=conv).values_list("user_id", "state"))
    assert states == {ann.pk: "accepted", bob.pk: "accepted"}


async def test_keep_in_touch_events_reach_both(meet_user):
    ann = await database_sync_to_async(meet_user)()
    bob = await database_sync_to_async(meet_user)()
    async with ws_connect(ann) as ann_ws, ws_connect(bob) as bob_ws:
        assert (await ann_ws.request("match.enter"))["data"]["status"] == "waiting"
        match_id = (await bob_ws.request("match.enter"))["data"]["match_id"]
        reply = await ann_ws.request("match.keep", {"match_id": match_id})
        assert reply["data"] == {"match_id": match_id, "kept": False, "conversation_id": None}
        asked = await bob_ws.event("match.keep")
        assert asked["data"] == {"match_id": match_id, "from_user_id": ann.pk}
        reply = await bob_ws.request("match.keep", {"match_id": match_id})
        cid = reply["data"]["conversation_id"]
        assert reply["data"]["kept"] is True and isinstance(cid, int)
        for ws in (ann_ws, bob_ws):
            kept = await ws.event("match.kept")
            assert set(kept["data"]) == set(EVENT_SCHEMAS["match.kept"])
            assert kept["data"] == {"match_id": match_id, "conversation_id": cid}
            joined = await ws.event("conversation.joined")
            assert joined["data"]["conversation_id"] == cid
        sent = await bob_ws.request(
            "message.send", {"conversation_id": cid, "body": "hi", "client_id": "k1"}
        )
        assert sent["ok"], sent
