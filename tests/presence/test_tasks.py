"""The beat task: runs the sweep under the periodic lock."""

import time

import pytest

from core.redis import bus, key
from presence import selectors
from presence.services import presence_touch
from presence.tasks import presence_sweep

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_the_sweep_task_takes_expired_users_offline(make_user, settings):
    ann = make_user()
    ttl = settings.LIMITS["PRESENCE_TTL_SECONDS"]
    presence_touch(user_id=ann.pk, conn_id="killed", now=time.time() - ttl - 1)
    assert selectors.online_ids(user_ids=[ann.pk]) == {ann.pk}
    # A beat of an earlier module on this worker (same key prefix) may have claimed this
    # period moments ago: this run would then be skipped as already done.
    claim = key("lock", "period", "presence.sweep")
    bus(claim).delete(claim)
    result = presence_sweep.apply()
    assert result.successful() and result.result >= 1
    assert selectors.online_ids(user_ids=[ann.pk]) == set()
