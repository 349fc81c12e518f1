"""live.services: the counters of live.stats, cache warming, trending roll-over, clean-up."""

import datetime
import time

import pytest
from django.core.cache import cache
from django.utils import timezone

from conversations.models import Message
from conversations.services import conversation_direct_get_or_create, message_send
from core.event_schema import event_validate
from core.redis import bus, key
from live import services
from matching.models import Match
from matching.pool import pool_enter, trending_key
from presence.services import presence_touch
from profiles.models import Profile
from profiles.selectors import profile_public_get

pytestmark = pytest.mark.django_db(transaction=True)


def _send(sender, conv, n: int) -> None:
    for i in range(n):
        message_send(sender_id=sender.pk, conversation_id=conv.pk, body="hi", client_id=f"m{i}")


def test_stats_count_the_last_minute_only(make_user):
    ann, bob = make_user(), make_user()
    # Presence and the pool live in Redis, shared by the run's tests: compare with before.
    now = time.time()  # one instant for both counts: others' entries cannot expire between
    before = services.live_stats_compute(now=now)
    conv, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    _send(ann, conv, 3)
    Message.objects.filter(client_id="m0").update(
        created_at=timezone.now() - datetime.timedelta(minutes=5)
    )
    Match.objects.create(user_a=ann, user_b=bob, shared_interests=["chess"])
    old = Match.objects.create(user_a=bob, user_b=ann)
    Match.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - datetime.timedelta(minutes=2)
    )
    presence_touch(user_id=ann.pk, conn_id="c1")
    pool_enter(
        user_id=bob.pk,
        language="en",
        region="",
        region_mode="prefer",
        interests=["go"],
        decide=False,
    )
    stats = services.live_stats_compute(now=now)
    event_validate("live.stats", stats)
    assert stats["messages_last_minute"] == 2
    assert stats["matches_last_minute"] == 1
    assert stats["users_online"] == before["users_online"] + 1
    assert stats["waiting_in_pool"] == before["waiting_in_pool"] + 1


def test_messages_are_counted_from_the_checkpoint_of_a_minute_ago(make_user):
    ann, bob = make_user(), make_user()
    conv, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    _send(ann, conv, 2)
    now = time.time()
    services.live_stats_compute(now=now - 61)  # a run a minute ago saw both messages
    first = Message.objects.order_by("pk").first()
    Message.objects.filter(pk=first.pk).update(created_at=timezone.now())  # would count if scanned
    assert services.live_stats_compute(now=now)["messages_last_minute"] == 0


def test_trending_is_today_top_interests(make_user):
    name = trending_key(int(time.time() * 1000))
    # Far above what other tests of the run may have added to today's set.
    bus().zadd(name, {"chess": 10**6 + 5, "go": 10**6 + 9, "music": 10**6 + 1})
    try:
        top = services.live_stats_compute()["trending"]
    finally:
        bus().zrem(name, "chess", "go", "music")  # later tests read today's set too
    assert top[:3] == [
        {"interest": "go", "score": 10**6 + 9},
        {"interest": "chess", "score": 10**6 + 5},
        {"interest": "music", "score": 10**6 + 1},
    ]


def test_rollover_trims_past_days_to_their_top(settings):
    settings.LIMITS = {**settings.LIMITS, "TRENDING_TOP_MAX": 2}
    yesterday = trending_key(int((time.time() - 86400) * 1000))
    bus().zadd(yesterday, {"a": 1, "b": 2, "c": 3, "d": 4})
    try:
        result = services.trending_rollover()
        kept = bus().zrevrange(yesterday, 0, -1)
    finally:
        bus().delete(yesterday)
    assert result["trimmed"] >= 2
    assert kept == ["d", "c"]


def test_cache_warm_stores_recently_active_profiles(make_user):
    active, idle = make_user(display_name="Active"), make_user(display_name="Idle")
    Profile.objects.filter(user=active).update(last_seen=timezone.now())
    assert services.cache_warm() >= 1
    assert cache.get(profile_public_get.key(user_id=active.pk))[1]["display_name"] == "Active"
    assert cache.get(profile_public_get.key(user_id=idle.pk)) is None


def test_cleanup_gives_stray_keys_their_ttl_back():
    stray = key("presence", "conns", "999999")
    bus().zadd(stray, {"conn": time.time()})
    fine = key("mm", "t", "999999")
    bus().hset(fine, "x", "1")
    bus().expire(fine, 30)
    try:
        report = services.live_cleanup()
        ttls = bus().ttl(stray), bus().ttl(fine)
    finally:
        bus().delete(stray, fine)
    assert report["presence_conns"]["fixed"] >= 1
    assert ttls[0] > 0
    assert 0 < ttls[1] <= 30
