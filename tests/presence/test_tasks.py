"""The beat task: runs the sweep under the periodic lock."""

import time

import pytest

from presence import selectors
from presence.services import presence_touch
from presence.tasks import presence_sweep

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_the_sweep_task_takes_expired_users_offline(make_user, settings):
    ann = make_user()
    ttl = settings.LIMITS["PRESENCE_TTL_SECONDS"]
    presence_touch(user_id=ann.pk, conn_id="killed", now=time.time() - ttl - 1)
    assert selectors.online_ids(user_ids=[ann.pk]) == {ann.pk}
    result = presence_sweep.apply()
    assert result.successful() and result.result >= 1
    assert selectors.online_ids(user_ids=[ann.pk]) == set()
