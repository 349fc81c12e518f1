"""Delivery checks a conversation's members: a removed member whose removal push was lost
hears nothing more of it (Hardening 2; conversations/members.py)."""

import asyncio

import pytest
from channels.db import database_sync_to_async

from conversations import services
from conversations.members import members_copies_clear
from conversations.models import Conversation
from conversations.services import (
    conversation_direct_get_or_create,
    conversation_group_create,
    member_remove,
    message_send,
)
from tests.conftest import accept_all, ws_connect

pytestmark = [pytest.mark.django_db(transaction=True)]

# What each kind of event looks like once it reaches a member.
EVENT_OF = {"message": "message.new", "typing": "typing", "edit": "message.updated", "read": "read"}


@pytest.fixture(autouse=True)
def _fresh_copies():
    members_copies_clear()
    yield
    members_copies_clear()


def _group(make_user):
    owner, stays, gone = make_user(), make_user(), make_user()
    conv = accept_all(
        conversation_group_create(user_id=owner.pk, title="Team", member_ids=[stays.pk, gone.pk])
    )
    first, _ = message_send(sender_id=owner.pk, conversation_id=conv.pk, body="hi", client_id="0")
    return owner, stays, gone, conv.pk, first.pk


def _remove_with_the_push_lost(monkeypatch, owner_id: int, cid: int, member_id: int) -> None:
    """The removal is committed; its pushes (``conversation.left``, ``.members``) are lost,
    as in a Redis blip."""
    lost: list[str] = []
    monkeypatch.setattr(services, "send_event", lambda **item: lost.append(item["event"]))
    try:
        member_remove(user_id=owner_id, conversation_id=cid, member_id=member_id)
    finally:
        monkeypatch.undo()
    assert lost == ["conversation.left", "conversation.members"]


async def _cause(kind: str, owner_ws, cid: int, message_id: int, n: int) -> None:
    if kind == "message":
        reply = await owner_ws.request(
            "message.send", {"conversation_id": cid, "body": f"secret {n}", "client_id": f"s{n}"}
        )
    elif kind == "typing":
        reply = await owner_ws.request("typing.start", {"conversation_id": cid})
    elif kind == "edit":
        reply = await owner_ws.request("message.edit", {"message_id": message_id, "body": f"e{n}"})
    else:
        reply = await owner_ws.request("read", {"conversation_id": cid, "seq": n})
    assert reply["ok"], reply


@pytest.mark.parametrize("kind", list(EVENT_OF))
async def test_a_removed_member_whose_push_was_lost_hears_nothing_more(
    make_user, monkeypatch, kind
):
    owner, stays, gone, cid, mid = await database_sync_to_async(_group)(make_user)
    async with (
        ws_connect(owner, sync={str(cid): 1}) as owner_ws,
        ws_connect(stays, sync={str(cid): 1}) as stays_ws,
        ws_connect(gone, sync={str(cid): 1}) as gone_ws,
    ):
        await database_sync_to_async(_remove_with_the_push_lost)(
            monkeypatch, owner.pk, cid, gone.pk
        )
        # Owner sends a second message first when the event is a read receipt, so its
        # marker has somewhere to move.
        if kind == "read":
            await _cause("message", owner_ws, cid, mid, 2)
            await stays_ws.event("message.new")
        await _cause(kind, owner_ws, cid, mid, 2)
        # The member who stays hears it: it was published to the group the removed one is
        # still subscribed to.
        event = await stays_ws.event(EVENT_OF[kind])
        assert event["data"]["conversation_id"] == cid
        # A message after it: the removed socket stopped listening, it hears that neither.
        await _cause("message", owner_ws, cid, mid, 3)
        await stays_ws.event("message.new")
        heard = [e for e in await gone_ws.drain(0.5) if e["type"] in EVENT_OF.values()]
        assert heard == []


async def test_a_groups_typing_is_checked_against_a_recent_copy_of_its_members(
    make_user, monkeypatch, settings
):
    """Typing carries no members version: a copy read before the lost removal serves it for
    at most MEMBERS_RECHECK_SECONDS."""
    settings.LIMITS = {**settings.LIMITS, "MEMBERS_RECHECK_SECONDS": 0.2}
    owner, stays, gone, cid, _ = await database_sync_to_async(_group)(make_user)
    async with (
        ws_connect(owner, sync={str(cid): 1}) as owner_ws,
        ws_connect(gone, sync={str(cid): 1}) as gone_ws,
    ):
        assert (await owner_ws.request("typing.start", {"conversation_id": cid}))["ok"]
        assert (await gone_ws.event("typing"))["data"]["user_id"] == owner.pk  # copy read
        await database_sync_to_async(_remove_with_the_push_lost)(
            monkeypatch, owner.pk, cid, gone.pk
        )
        await asyncio.sleep(0.3)  # the copy is now older than the bound
        assert (await owner_ws.request("typing.stop", {"conversation_id": cid}))["ok"]
        assert [e for e in await gone_ws.drain(0.5) if e["type"] == "typing"] == []


async def test_a_member_added_later_hears_the_messages_sent_after(make_user):
    """A copy read before an addition does not refuse the new member: the version moved."""
    owner, stays, gone, cid, _ = await database_sync_to_async(_group)(make_user)
    late = await database_sync_to_async(make_user)()
    async with ws_connect(owner, sync={str(cid): 1}) as owner_ws:
        await _cause("message", owner_ws, cid, 0, 2)
        await database_sync_to_async(member_remove)(
            user_id=owner.pk, conversation_id=cid, member_id=gone.pk
        )
        async with ws_connect(stays, sync={str(cid): 2}) as stays_ws:
            await _cause("message", owner_ws, cid, 0, 3)  # version 1: a copy is read
            assert (await stays_ws.event("message.new"))["data"]["seq"] == 3
            await database_sync_to_async(services.members_add)(
                user_id=owner.pk, conversation_id=cid, member_ids=[late.pk]
            )
            await database_sync_to_async(accept_all)(cid)
            async with ws_connect(late, sync={}) as late_ws:
                await _cause("message", owner_ws, cid, 0, 4)
                assert (await late_ws.event("message.new"))["data"]["seq"] == 4
                assert (await stays_ws.event("message.new"))["data"]["seq"] == 4


def test_every_change_of_the_members_moves_the_version(make_user):
    owner, stays, gone, cid, _ = _group(make_user)
    version = lambda: Conversation.objects.get(pk=cid).members_version  # noqa: E731
    assert version() == 2  # created at 0; each of the two invitations accepted
    newcomer = make_user()
    services.members_add(user_id=owner.pk, conversation_id=cid, member_ids=[newcomer.pk])
    assert version() == 3
    services.membership_accept(user_id=newcomer.pk, conversation_id=cid)
    assert version() == 4
    member_remove(user_id=owner.pk, conversation_id=cid, member_id=gone.pk)
    assert version() == 5
    services.conversation_leave(user_id=stays.pk, conversation_id=cid)
    assert version() == 6
    services.members_add(user_id=owner.pk, conversation_id=cid, member_ids=[])  # nothing new
    assert version() == 6
    ann, bob = make_user(), make_user()
    direct, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    direct_version = lambda: Conversation.objects.get(pk=direct.pk).members_version  # noqa: E731
    assert direct_version() == 0
    services.membership_decline(user_id=bob.pk, conversation_id=direct.pk)
    assert direct_version() == 1
