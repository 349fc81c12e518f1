"""The reads of a socket's opening, on the loop's own connection, agree with the ORM's."""

import pytest
from channels.db import database_sync_to_async

from conversations.models import Conversation, Membership, Message
from conversations.selectors import (
    aconversation_ids_for_user,
    aresume_batch,
    conversation_ids_for_user,
    resume_batch,
)
from conversations.services import conversation_direct_get_or_create, conversation_group_create

pytestmark = pytest.mark.django_db(transaction=True)


def _world(make_user):
    ann, bob, cat, eve = make_user(), make_user(), make_user(), make_user()
    caught_up, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    behind = conversation_group_create(user_id=ann.pk, title="g", member_ids=[bob.pk, cat.pk])
    far, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=cat.pk)
    theirs, _ = conversation_direct_get_or_create(user_id=bob.pk, other_user_id=eve.pk)
    for conv, n in ((caught_up, 2), (behind, 5), (far, 30), (theirs, 3)):
        Message.objects.bulk_create(
            Message(conversation=conv, seq=s, sender_id=bob.pk if conv != far else cat.pk,
                    body=f"m{s}", client_id=f"{conv.pk}-{s}")
            for s in range(1, n + 1)
        )  # fmt: skip
        Conversation.objects.filter(pk=conv.pk).update(last_seq=n)
    # Changes: in `behind`, seq 1 (change 1, below the change cursor), seq 2 (change 3) and
    # seq 4 (change 2: above the seq cursor, so it is in the replay instead); in `far`,
    # more changes than the bound.
    for seq, change in ((1, 1), (4, 2), (2, 3)):
        Message.objects.filter(conversation=behind, seq=seq).update(
            body=f"edited {change}", change_seq=change
        )
    Conversation.objects.filter(pk=behind.pk).update(last_change_seq=3)
    for seq in range(1, 13):
        Message.objects.filter(conversation=far, seq=seq).update(change_seq=seq)
    Conversation.objects.filter(pk=far.pk).update(last_change_seq=12)
    # Not named: a group ann was added to (accepted), and an invitation (pending).
    joined = conversation_group_create(user_id=bob.pk, title="new", member_ids=[ann.pk])
    Membership.objects.filter(conversation=joined, user_id=ann.pk).update(state="accepted")
    invited = conversation_group_create(user_id=eve.pk, title="inv", member_ids=[ann.pk])
    cursors = {caught_up.pk: 2, behind.pk: 2, far.pk: 30, theirs.pk: 0, 999_999: 0}
    change_cursors = {behind.pk: 1, far.pk: 0}
    return ann, cursors, change_cursors, (joined.pk, invited.pk)


async def test_resume_in_one_statement_matches_the_orm(make_user):
    ann, cursors, change_cursors, (joined, invited) = await database_sync_to_async(_world)(
        make_user
    )
    args = {"cursors": cursors, "change_cursors": change_cursors, "limit": 10,
            "changes_limit": 10, "known": list(cursors)}  # fmt: skip
    orm = await database_sync_to_async(resume_batch)(user_id=ann.pk, **args)
    loop = await aresume_batch(user_id=ann.pk, **args)
    assert loop == orm
    by_cid = {r.conversation_id: r for r in loop.conversations}
    caught_up, behind, far = list(cursors)[:3]
    assert len(by_cid) == 3  # not a member of `theirs`, and 999999 does not exist
    assert [(m["seq"], m["body"]) for m in by_cid[behind].messages] == [
        (3, "m3"), (4, "edited 2"), (5, "m5")
    ]  # fmt: skip
    # Only what is at or below the seq cursor and after the change cursor, in change order.
    assert [(m["seq"], m["change_seq"], m["body"]) for m in by_cid[behind].changes] == [
        (2, 3, "edited 3")
    ]
    assert (by_cid[behind].change_head, by_cid[behind].changes_too_far) == (3, False)
    assert (by_cid[far].changes, by_cid[far].changes_too_far, by_cid[far].change_head) == (
        [], True, 12
    )  # fmt: skip
    assert (by_cid[caught_up].messages, by_cid[caught_up].too_far) == ([], False)
    assert by_cid[caught_up].changes == []  # no change cursor: no changes replayed
    assert [(u.conversation_id, u.state) for u in loop.unnamed] == [
        (joined, "accepted"), (invited, "pending")
    ]  # fmt: skip
    # Without ``known`` (more sync frames to come) nothing unnamed is read.
    args["known"] = None
    assert (await aresume_batch(user_id=ann.pk, **args)).unnamed == []
    empty = {"cursors": {}, "change_cursors": {}, "limit": 10, "changes_limit": 10}
    assert (await aresume_batch(user_id=ann.pk, **empty)).conversations == []
    everything = await aresume_batch(user_id=ann.pk, **empty, known=[])
    assert len(everything.unnamed) == 5
    assert everything == await database_sync_to_async(resume_batch)(
        user_id=ann.pk, **empty, known=[]
    )


async def test_memberships_on_the_loop_match_the_orm(make_user):
    ann, *_ = await database_sync_to_async(_world)(make_user)
    orm = await database_sync_to_async(conversation_ids_for_user)(user_id=ann.pk)
    assert sorted(await aconversation_ids_for_user(user_id=ann.pk)) == sorted(orm)
    assert len(orm) == 4


async def test_memberships_of_sockets_opening_together_are_one_statement(
    make_user, loop_statements
):
    import asyncio

    import conversations.selectors as selectors

    ann, *_ = await database_sync_to_async(_world)(make_user)
    others = await database_sync_to_async(lambda: [make_user() for _ in range(10)])()
    statements = loop_statements(selectors)
    first, *rest = await asyncio.gather(
        aconversation_ids_for_user(user_id=ann.pk),
        *(aconversation_ids_for_user(user_id=u.pk) for u in others),
        aconversation_ids_for_user(user_id=ann.pk),
    )
    assert len(statements) <= 2, statements
    orm = await database_sync_to_async(conversation_ids_for_user)(user_id=ann.pk)
    assert sorted(first) == sorted(rest[-1]) == sorted(orm) and len(orm) == 4
    assert rest[:-1] == [[]] * 10  # in no conversation
