"""Credentials checked on the loop's own connection: the same user as the ORM finds."""

import pytest
from channels.db import database_sync_to_async

from accounts.selectors import auser_active, auser_by_token
from tests.conftest import token_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_token_finds_its_active_user_and_nothing_else(make_user):
    ann, gone = await database_sync_to_async(lambda: (make_user(), make_user()))()
    ann_token, gone_token = await database_sync_to_async(
        lambda: (token_for(ann), token_for(gone))
    )()
    gone.is_active = False
    await database_sync_to_async(gone.save)()
    user = await auser_by_token(token=ann_token)
    assert user.pk == ann.pk and user.username == ann.username and user.is_authenticated
    assert user.password == ann.password and user.date_joined == ann.date_joined
    assert await auser_by_token(token=gone_token) is None  # inactive
    assert await auser_by_token(token="no-such-token") is None
    assert (await auser_active(user_id=ann.pk)).pk == ann.pk
    assert await auser_active(user_id=gone.pk) is None
    assert await auser_active(user_id=999_999) is None


async def test_tokens_of_sockets_opening_together_are_one_statement(make_user, loop_statements):
    """30 sockets authenticating at once: one statement for those queued behind the first,
    each finds its own user (its own instance); a key that could not be sent (a NUL byte)
    or that is too long fails none of the others."""
    import asyncio

    import accounts.selectors as selectors

    users = await database_sync_to_async(lambda: [make_user() for _ in range(30)])()
    tokens = await database_sync_to_async(lambda: [token_for(u) for u in users])()
    statements = loop_statements(selectors)
    found = await asyncio.gather(
        *(auser_by_token(token=t) for t in tokens),
        auser_by_token(token="bad\x00key"),
        auser_by_token(token="x" * 41),
        auser_by_token(token=tokens[0]),
    )
    assert len(statements) <= 2, statements  # the first alone, the rest together
    assert [u.pk for u in found[:30]] == [u.pk for u in users]
    assert found[30] is None and found[31] is None
    assert found[32].pk == users[0].pk and found[32] is not found[0]
