"""The reads of a socket's opening, on the loop's own connection, agree with the ORM's."""

import pytest
from channels.db import database_sync_to_async

from conversations.models import Conversation, Message
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
    Message.objects.filter(conversation=behind, seq=4).update(body="edited")
    cursors = {caught_up.pk: 2, behind.pk: 2, far.pk: 0, theirs.pk: 0, 999_999: 0}
    return ann, cursors


async def test_resume_in_one_statement_matches_the_orm(make_user):
    ann, cursors = await database_sync_to_async(_world)(make_user)
    limit = 10
    orm = await database_sync_to_async(resume_batch)(user_id=ann.pk, cursors=cursors, limit=limit)
    loop = await aresume_batch(user_id=ann.pk, cursors=cursors, limit=limit)
    assert loop == orm
    by_cid = {cid: (msgs, too_far, head) for cid, msgs, too_far, head in loop}
    caught_up, behind, far = list(cursors)[:3]
    assert len(by_cid) == 3  # not a member of `theirs`, and 999999 does not exist
    assert [(m["seq"], m["body"]) for m in by_cid[behind][0]] == [
        (3, "m3"), (4, "edited"), (5, "m5")
    ]  # fmt: skip
    assert by_cid[far] == ([], True, 30)  # too far behind
    assert by_cid[caught_up] == ([], False, 2)  # caught up
    assert await aresume_batch(user_id=ann.pk, cursors={}, limit=limit) == []


async def test_memberships_on_the_loop_match_the_orm(make_user):
    ann, _ = await database_sync_to_async(_world)(make_user)
    orm = await database_sync_to_async(conversation_ids_for_user)(user_id=ann.pk)
    assert sorted(await aconversation_ids_for_user(user_id=ann.pk)) == sorted(orm)
    assert len(orm) == 3


async def test_memberships_of_sockets_opening_together_are_one_statement(
    make_user, loop_statements
):
    import asyncio

    import conversations.selectors as selectors

    ann, _ = await database_sync_to_async(_world)(make_user)
    others = await database_sync_to_async(lambda: [make_user() for _ in range(10)])()
    statements = loop_statements(selectors)
    first, *rest = await asyncio.gather(
        aconversation_ids_for_user(user_id=ann.pk),
        *(aconversation_ids_for_user(user_id=u.pk) for u in others),
        aconversation_ids_for_user(user_id=ann.pk),
    )
    assert len(statements) <= 2, statements
    orm = await database_sync_to_async(conversation_ids_for_user)(user_id=ann.pk)
    assert sorted(first) == sorted(rest[-1]) == sorted(orm) and len(orm) == 3
    assert rest[:-1] == [[]] * 10  # in no conversation
