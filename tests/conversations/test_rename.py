"""Renaming a group: owners only, a bounded plain-text title, and every member's sockets told."""

import pytest
from channels.db import database_sync_to_async

from conversations.models import Conversation
from conversations.services import conversation_group_create, conversation_rename
from core.event_schema import event_validate
from tests.conftest import accept_all, api_as, ws_connect

pytestmark = pytest.mark.django_db(transaction=True)


def _group(owner, *members, title="Climbers"):
    return accept_all(
        conversation_group_create(user_id=owner.pk, title=title, member_ids=[m.pk for m in members])
    )


def test_the_owner_renames_and_gets_the_conversation_back(make_user):
    ann, bob = make_user(), make_user()
    conv = _group(ann, bob)
    res = api_as(ann).patch(
        f"/api/conversations/{conv.pk}", {"title": "  Boulderers  "}, format="json"
    )
    assert res.status_code == 200, res.json()
    assert res.json()["title"] == "Boulderers"  # trimmed
    assert Conversation.objects.get(pk=conv.pk).title == "Boulderers"


def test_a_member_who_is_not_an_owner_cannot_rename(make_user):
    ann, bob = make_user(), make_user()
    conv = _group(ann, bob)
    res = api_as(bob).patch(f"/api/conversations/{conv.pk}", {"title": "Mine"}, format="json")
    assert (res.status_code, res.json()["code"]) == (403, "forbidden")
    outsider = make_user()
    res = api_as(outsider).patch(f"/api/conversations/{conv.pk}", {"title": "X"}, format="json")
    assert res.status_code == 403
    assert Conversation.objects.get(pk=conv.pk).title == "Climbers"


@pytest.mark.parametrize("title", ["", "   ", "x" * 121, 7, None, "a\x00b", ["T"]])
def test_a_bad_title_is_invalid_and_changes_nothing(make_user, title):
    ann, bob = make_user(), make_user()
    conv = _group(ann, bob)
    res = api_as(ann).patch(f"/api/conversations/{conv.pk}", {"title": title}, format="json")
    assert (res.status_code, res.json()["code"]) == (400, "invalid")
    assert Conversation.objects.get(pk=conv.pk).title == "Climbers"


def test_a_title_of_exactly_the_limit_is_accepted(make_user, settings):
    ann, bob = make_user(), make_user()
    conv = _group(ann, bob)
    title = "é" * settings.LIMITS["GROUP_TITLE_MAX_CHARS"]
    res = api_as(ann).patch(f"/api/conversations/{conv.pk}", {"title": title}, format="json")
    assert res.status_code == 200
    assert res.json()["title"] == title


def test_a_direct_conversation_has_no_title_to_change(api, make_user):
    bob = make_user()
    cid = api.post(
        "/api/conversations", {"kind": "direct", "user_id": bob.pk}, format="json"
    ).json()["id"]
    res = api.patch(f"/api/conversations/{cid}", {"title": "Us"}, format="json")
    assert (res.status_code, res.json()["code"]) == (400, "invalid")


async def test_every_accepted_member_hears_the_rename_and_pending_ones_do_not(make_user):
    ann = await database_sync_to_async(make_user)()
    bob = await database_sync_to_async(make_user)()
    cat = await database_sync_to_async(make_user)()
    conv = await database_sync_to_async(_group)(ann, bob)
    async with (
        ws_connect(ann, sync={}) as ann_ws,
        ws_connect(bob, sync={}) as bob_ws,
        ws_connect(cat, sync={}) as cat_ws,
    ):
        # cat is invited (not a contact of ann's): a pending member hears nothing of it.
        await database_sync_to_async(
            lambda: api_as(ann).post(
                f"/api/conversations/{conv.pk}/members", {"user_ids": [cat.pk]}, format="json"
            )
        )()
        await cat_ws.event("conversation.request")
        await database_sync_to_async(conversation_rename)(
            user_id=ann.pk, conversation_id=conv.pk, title="Boulderers"
        )
        for ws in (ann_ws, bob_ws):
            event = await ws.event("conversation.renamed")
            event_validate(event["type"], event["data"])  # the declared shape
            assert event["data"] == {
                "conversation_id": conv.pk,
                "title": "Boulderers",
                "by_user_id": ann.pk,
            }
        assert [e for e in await cat_ws.drain(0.5) if e["type"] == "conversation.renamed"] == []
        # The same title again is no change: nobody is told.
        await database_sync_to_async(conversation_rename)(
            user_id=ann.pk, conversation_id=conv.pk, title="Boulderers"
        )
        assert [e for e in await bob_ws.drain(0.5) if e["type"] == "conversation.renamed"] == []
