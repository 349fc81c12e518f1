"""Resume is complete: ``sync`` replays the edits and deletions a client missed (once, in
change order, bounded) and lists the conversations it did not name (conversations/handlers.py
``sync``, selectors ``aresume_batch``, the sequencer's change floor)."""

import pytest
from channels.db import database_sync_to_async

from conversations import services
from conversations.models import Conversation, Message
from conversations.services import (
    conversation_direct_get_or_create,
    conversation_group_create,
    member_remove,
    message_delete,
    message_edit,
    message_send,
)
from core.errors import Invalid
from core.event_schema import EVENT_SCHEMAS
from tests.conftest import accept_all, ws_connect

pytestmark = [pytest.mark.django_db(transaction=True)]


def _pair_with(make_user, n: int):
    """ann and bob, contacts, with ``n`` messages from ann."""
    ann, bob = make_user(), make_user()
    conv, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    accept_all(conv)
    ids = [
        message_send(sender_id=ann.pk, conversation_id=conv.pk, body=f"m{i}", client_id=f"k{i}")[
            0
        ].pk
        for i in range(1, n + 1)
    ]
    return ann, bob, conv.pk, ids


def _kinds(events, *types):
    return [e for e in events if e["type"] in types]


def _shape(event):
    assert set(event["data"]) == set(EVENT_SCHEMAS[event["type"]]), event


async def test_edits_and_deletes_made_while_away_are_replayed_once_in_change_order(make_user):
    ann, bob, cid, ids = await database_sync_to_async(_pair_with)(make_user, 5)
    # bob holds seqs 1..4 and every change so far (none); then, while he is away:
    edit = database_sync_to_async(message_edit)
    await edit(user_id=ann.pk, message_id=ids[2], body="three, once")  # change 1
    await database_sync_to_async(message_delete)(user_id=ann.pk, message_id=ids[0])  # 2
    await edit(user_id=ann.pk, message_id=ids[1], body="two")  # change 3
    await edit(user_id=ann.pk, message_id=ids[2], body="three, twice")  # change 4
    await edit(user_id=ann.pk, message_id=ids[4], body="five, edited")  # 5: above his cursor
    async with ws_connect(bob, sync={str(cid): {"seq": 4, "change_seq": 0}}) as ws:
        summary = ws.sync_reply["data"]["conversations"][str(cid)]
        assert summary == {
            "replayed": 1, "too_far": False, "latest_seq": 5,
            "changes_replayed": 3, "changes_too_far": False, "latest_change_seq": 5,
        }  # fmt: skip
        frames = _kinds(ws.events, "message.updated", "message.new")
        for frame in frames:
            _shape(frame)
        # Each changed message once, in its current state, in the order of its last change;
        # the message above the cursor comes as message.new in its current state instead.
        assert [(f["type"], f["data"]["seq"], f["data"]["body"], f["data"]["deleted"],
                 f["data"]["change_seq"]) for f in frames] == [
            ("message.updated", 1, "", True, 2),
            ("message.updated", 2, "two", False, 3),
            ("message.updated", 3, "three, twice", False, 4),
            ("message.new", 5, "five, edited", False, 5),
        ]  # fmt: skip
        ws.events.clear()
        # Live changes go on once each; one already replayed is not sent again.
        await edit(user_id=ann.pk, message_id=ids[3], body="four")
        live = await ws.event("message.updated")
        assert (live["data"]["seq"], live["data"]["change_seq"]) == (4, 6)
        assert not _kinds(await ws.drain(), "message.updated")
    # Caught up: a second resume from the latest change replays nothing.
    async with ws_connect(bob, sync={str(cid): {"seq": 5, "change_seq": 6}}) as ws:
        assert ws.sync_reply["data"]["conversations"][str(cid)]["changes_replayed"] == 0
        assert not _kinds(ws.events, "message.updated", "message.new")


async def test_a_bare_seq_cursor_replays_no_changes_and_tells_the_change_head(make_user):
    ann, bob, cid, ids = await database_sync_to_async(_pair_with)(make_user, 2)
    await database_sync_to_async(message_edit)(user_id=ann.pk, message_id=ids[0], body="x")
    async with ws_connect(bob, sync={str(cid): 2}) as ws:
        summary = ws.sync_reply["data"]["conversations"][str(cid)]
        assert (summary["changes_replayed"], summary["latest_change_seq"]) == (0, 1)
        assert not _kinds(ws.events, "message.updated")


async def test_more_changes_than_the_bound_say_changes_too_far(make_user, settings):
    settings.LIMITS = {**settings.LIMITS, "RESUME_MAX_CHANGES": 2}
    ann, bob, cid, ids = await database_sync_to_async(_pair_with)(make_user, 3)
    for mid in ids:
        await database_sync_to_async(message_edit)(user_id=ann.pk, message_id=mid, body="e")
    async with ws_connect(bob, sync={str(cid): {"seq": 3, "change_seq": 0}}) as ws:
        summary = ws.sync_reply["data"]["conversations"][str(cid)]
        assert (summary["changes_too_far"], summary["changes_replayed"]) == (True, 0)
        (too_far,) = _kinds(ws.events, "sync.changes_too_far")
        _shape(too_far)
        assert too_far["data"] == {
            "conversation_id": cid, "after_change_seq": 0, "latest_change_seq": 3
        }  # fmt: skip
        assert not _kinds(ws.events, "message.updated")
        ws.events.clear()
        # The connection now holds every change up to 3: the next one flows live.
        await database_sync_to_async(message_delete)(user_id=ann.pk, message_id=ids[0])
        assert (await ws.event("message.updated"))["data"]["change_seq"] == 4
    # Exactly at the bound: replayed.
    async with ws_connect(bob, sync={str(cid): {"seq": 3, "change_seq": 2}}) as ws:
        assert ws.sync_reply["data"]["conversations"][str(cid)]["changes_replayed"] == 2


async def test_a_lost_live_change_is_read_when_the_next_one_arrives(make_user, monkeypatch):
    ann, bob, cid, ids = await database_sync_to_async(_pair_with)(make_user, 2)

    def edit_with_the_push_lost():
        lost: list[str] = []
        monkeypatch.setattr(services, "send_event", lambda **item: lost.append(item["event"]))
        try:
            message_edit(user_id=ann.pk, message_id=ids[0], body="lost edit")
        finally:
            monkeypatch.undo()
        assert lost == ["message.updated"]

    async with ws_connect(bob, sync={str(cid): {"seq": 2, "change_seq": 0}}) as ws:
        await database_sync_to_async(edit_with_the_push_lost)()
        await database_sync_to_async(message_edit)(user_id=ann.pk, message_id=ids[1], body="b")
        got = [(await ws.event("message.updated"))["data"] for _ in range(2)]
        assert [(m["seq"], m["body"], m["change_seq"]) for m in got] == [
            (1, "lost edit", 1), (2, "b", 2)
        ]  # fmt: skip
        assert not _kinds(await ws.drain(), "message.updated")


async def test_a_change_of_a_message_whose_push_was_lost_brings_the_message(make_user):
    ann, bob, cid, _ = await database_sync_to_async(_pair_with)(make_user, 1)

    def store_silently():  # a message whose push never happened
        Conversation.objects.filter(pk=cid).update(last_seq=2)
        return Message.objects.create(
            conversation_id=cid, seq=2, sender=ann, body="lost", client_id="x"
        ).pk

    async with ws_connect(bob, sync={str(cid): {"seq": 1, "change_seq": 0}}) as ws:
        mid = await database_sync_to_async(store_silently)()
        await database_sync_to_async(message_edit)(user_id=ann.pk, message_id=mid, body="found")
        new = await ws.event("message.new")
        assert (new["data"]["seq"], new["data"]["body"], new["data"]["change_seq"]) == (
            2, "found", 1
        )  # fmt: skip
        assert not _kinds(await ws.drain(), "message.updated", "message.new")


async def test_conversations_joined_invited_and_left_while_away_are_in_the_sync_reply(
    make_user,
):
    def world():
        owner, bob, stranger = make_user(), make_user(), make_user()
        kept = accept_all(conversation_group_create(user_id=owner.pk, title="kept",
                                                    member_ids=[bob.pk]))  # fmt: skip
        gone = accept_all(conversation_group_create(user_id=owner.pk, title="gone",
                                                    member_ids=[bob.pk]))  # fmt: skip
        # While bob is away: added to a new group, invited by a stranger, removed from one.
        new = accept_all(conversation_group_create(user_id=owner.pk, title="new",
                                                   member_ids=[bob.pk]))  # fmt: skip
        message_send(sender_id=owner.pk, conversation_id=new.pk, body="welcome", client_id="w")
        invite = conversation_group_create(user_id=stranger.pk, title="ask", member_ids=[bob.pk])
        member_remove(user_id=owner.pk, conversation_id=gone.pk, member_id=bob.pk)
        return owner, bob, kept.pk, gone.pk, new.pk, invite.pk

    owner, bob, kept, gone, new, invite = await database_sync_to_async(world)()
    async with ws_connect(bob, sync={str(kept): 0, str(gone): 0}) as ws:
        data = ws.sync_reply["data"]
        assert list(data["conversations"]) == [str(kept)]
        assert data["left"] == [gone]
        (joined,) = data["joined"]
        assert (joined["id"], joined["title"], joined["state"], joined["last_seq"]) == (
            new, "new", "accepted", 1
        )  # fmt: skip
        assert joined["last_message"]["body"] == "welcome" and joined["unread"] == 1
        assert joined["last_change_seq"] == 0 and owner.pk in joined["member_ids"]
        assert [(r["id"], r["state"]) for r in data["requests"]] == [(invite, "pending")]
        assert data["truncated"] is False
        # The conversation listed is heard from now on: its next message, not the first.
        await database_sync_to_async(message_send)(
            sender_id=owner.pk, conversation_id=new, body="next", client_id="n"
        )
        got = await ws.event("message.new")
        assert (got["data"]["conversation_id"], got["data"]["seq"]) == (new, 2)
        # The one left is not.
        await database_sync_to_async(message_send)(
            sender_id=owner.pk, conversation_id=gone, body="secret", client_id="s"
        )
        assert not [e for e in _kinds(await ws.drain(), "message.new")
                    if e["data"]["conversation_id"] == gone]  # fmt: skip


async def test_the_unnamed_list_waits_for_the_last_sync_frame(make_user):
    def world():
        owner, bob = make_user(), make_user()
        convs = [
            accept_all(
                conversation_group_create(user_id=owner.pk, title=f"g{i}", member_ids=[bob.pk])
            ).pk
            for i in range(3)
        ]
        return bob, convs

    bob, (a, b, c) = await database_sync_to_async(world)()
    async with ws_connect(bob) as ws:
        first = await ws.request("sync", {"conversations": {str(a): 0}, "more": True})
        assert first["ok"] and "joined" not in first["data"]
        last = await ws.request("sync", {"conversations": {str(b): 0}})
        # a was named in the first frame, b in this one: only c is new to the client.
        assert [j["id"] for j in last["data"]["joined"]] == [c]


@pytest.mark.parametrize(
    "data",
    [
        {"conversations": {"5": {"seq": -1}}},
        {"conversations": {"5": {"seq": 1, "change_seq": "2"}}},
        {"conversations": {"5": {"seq": 1, "changes": 2}}},
        {"conversations": {"5": {"change_seq": 2}}},
        {"conversations": {}, "more": "yes"},
    ],
)
async def test_a_bad_cursor_is_invalid(make_user, data):
    user = await database_sync_to_async(make_user)()
    async with ws_connect(user) as ws:
        reply = await ws.request("sync", data)
        assert reply["error"]["code"] == "invalid", reply


def test_change_numbers_are_per_conversation_and_an_edit_of_a_deleted_message_takes_none(
    make_user,
):
    ann, _, cid, ids = _pair_with(make_user, 2)
    other_ann, _, _, other_ids = _pair_with(make_user, 1)
    assert message_edit(user_id=ann.pk, message_id=ids[0], body="a").change_seq == 1
    assert message_delete(user_id=ann.pk, message_id=ids[0]).change_seq == 2
    with pytest.raises(Invalid):
        message_edit(user_id=ann.pk, message_id=ids[0], body="b")
    assert message_edit(user_id=other_ann.pk, message_id=other_ids[0], body="c").change_seq == 1
    assert Conversation.objects.get(pk=cid).last_change_seq == 2
    assert list(Message.objects.filter(conversation_id=cid).order_by("seq").values_list(
        "change_seq", flat=True)) == [2, 0]  # fmt: skip
    # A new message starts unchanged, and the REST list carries the change head.
    sent, _ = message_send(sender_id=ann.pk, conversation_id=cid, body="n", client_id="n")
    assert Message.objects.get(pk=sent.pk).change_seq == 0
    from conversations.selectors import conversation_list

    (row,) = conversation_list(user_id=ann.pk)
    assert (row["last_change_seq"], row["last_message"]["change_seq"]) == (2, 0)
