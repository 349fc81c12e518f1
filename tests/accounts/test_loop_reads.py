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
