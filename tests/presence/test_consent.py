"""Presence follows consent: contacts only, both ways; a block hides it live; last_seen for
contacts only (docs/subsystems/presence.md, "Consent")."""

import time

import pytest
from channels.db import database_sync_to_async
from django.conf import settings

from conversations.services import conversation_direct_get_or_create, membership_accept
from presence import selectors
from presence.services import presence_sweep, presence_touch
from profiles.models import Profile
from profiles.selectors import profile_get, profile_public
from relations.services import block_create
from tests.conftest import accept_all, api_as, ws_connect

pytestmark = [pytest.mark.django_db(transaction=True)]


def _presence(events, user_id):
    return [
        e["data"]
        for e in events
        if e["type"] in ("presence", "presence.hidden") and e["data"]["user_id"] == user_id
    ]


def _after_grace() -> float:
    return time.time() + settings.LIMITS["PRESENCE_OFFLINE_GRACE_SECONDS"] + 1


async def _query(ws, user_ids):
    reply = await ws.request("presence.query", {"user_ids": user_ids})
    return {p["user_id"] for p in reply["data"]["presence"]}


async def test_a_request_shows_no_presence_either_way_until_accepted(make_user):
    ann = await database_sync_to_async(make_user)()
    bob = await database_sync_to_async(make_user)()
    conv, _ = await database_sync_to_async(conversation_direct_get_or_create)(
        user_id=ann.pk, other_user_id=bob.pk
    )
    assert await selectors.acontact_ids(user_id=ann.pk) == []
    assert await selectors.acontact_ids(user_id=bob.pk) == []
    async with ws_connect(bob, sync={}) as bob_ws:
        async with ws_connect(ann, sync={}) as ann_ws:
            assert await _query(ann_ws, [bob.pk]) == set()
            assert await _query(bob_ws, [ann.pk]) == set()
            assert _presence(await bob_ws.drain(0.5), ann.pk) == []
            # Bob accepts: each side is told the other's current presence, and contacts.
            await database_sync_to_async(membership_accept)(user_id=bob.pk, conversation_id=conv.pk)
            seen_by_bob = await bob_ws.event("presence")
            assert (seen_by_bob["data"]["user_id"], seen_by_bob["data"]["online"]) == (ann.pk, True)
            seen_by_ann = await ann_ws.event("presence")
            assert (seen_by_ann["data"]["user_id"], seen_by_ann["data"]["online"]) == (bob.pk, True)
            assert await _query(ann_ws, [bob.pk]) == {bob.pk}
        assert ann.pk in await database_sync_to_async(presence_sweep)(now=_after_grace())
        offline = await bob_ws.event("presence")
        assert (offline["data"]["user_id"], offline["data"]["online"]) == (ann.pk, False)


async def test_a_block_hides_presence_both_ways_on_open_sockets(make_user):
    def world():
        ann, bob, cat = make_user(), make_user(), make_user()
        for other in (bob, cat):
            accept_all(conversation_direct_get_or_create(user_id=ann.pk, other_user_id=other.pk)[0])
        return ann, bob, cat

    ann, bob, cat = await database_sync_to_async(world)()
    sweep = database_sync_to_async(presence_sweep)
    async with ws_connect(bob, sync={}) as bob_ws, ws_connect(cat, sync={}) as cat_ws:
        async with ws_connect(ann, sync={}) as ann_ws:
            await bob_ws.event("presence")
            await cat_ws.event("presence")
            assert await _query(ann_ws, [bob.pk]) == {bob.pk}
            await database_sync_to_async(block_create)(user_id=bob.pk, blocked_id=ann.pk)
            assert (await bob_ws.event("presence.hidden"))["data"] == {"user_id": ann.pk}
            assert (await ann_ws.event("presence.hidden"))["data"] == {"user_id": bob.pk}
            assert await _query(ann_ws, [bob.pk, cat.pk]) == {cat.pk}
            assert await _query(bob_ws, [ann.pk]) == set()
            assert await selectors.acontact_ids(user_id=ann.pk) == [cat.pk]
            assert await selectors.acontact_ids(user_id=bob.pk) == []
        # Ann goes offline and comes back: cat hears both, bob neither.
        assert ann.pk in await sweep(now=_after_grace())
        assert (await cat_ws.event("presence"))["data"]["online"] is False
        async with ws_connect(ann, sync={}) as ann_ws:
            assert (await cat_ws.event("presence"))["data"]["online"] is True
            assert _presence(await bob_ws.drain(0.5), ann.pk) == []
            # Nor the other way: bob's offline never reaches ann.
            await bob_ws.close()
            assert bob.pk in await sweep(now=_after_grace())
            assert _presence(await ann_ws.drain(0.5), bob.pk) == []


def test_last_seen_is_for_contacts_only(make_user):
    ann, bob, cat, eve = (make_user() for _ in range(4))
    accept_all(conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)[0])
    conversation_direct_get_or_create(user_id=cat.pk, other_user_id=ann.pk)  # a request
    presence_touch(user_id=ann.pk, conn_id="consent-test")
    assert Profile.objects.get(user=ann).last_seen is not None

    def last_seen(viewer):
        response = api_as(viewer).get(f"/api/users/{ann.pk}/profile")
        assert response.status_code == 200
        return response.json()["last_seen"]

    assert last_seen(bob) is not None  # a contact
    assert last_seen(ann) is not None  # me
    assert last_seen(cat) is None  # asked, not accepted
    assert last_seen(eve) is None  # a stranger
    assert api_as(ann).get("/api/profile").json()["last_seen"] is not None
    assert api_as(eve).get(f"/api/presence?user_ids={ann.pk}").json() == []
    # What Meet shows of a partner (match.found) carries no last_seen.
    profile = profile_get(user_id=ann.pk)
    assert profile is not None and profile_public(profile=profile)["last_seen"] is None
    # A block ends it for a contact.
    block_create(user_id=ann.pk, blocked_id=bob.pk)
    assert last_seen(bob) is None
