"""Meet services on the real PostgreSQL and Redis: records, safety, rebuilds, the sweep."""

import pytest
from django.utils import timezone

from conversations.services import conversation_direct_get_or_create, message_send
from core.errors import Conflict, Forbidden, Invalid
from core.errors import Forbidden as ConversationForbidden
from core.redis import bus, key
from matching import pool, services, tasks
from matching.models import Match, Report
from relations.models import Block
from tests.conftest import accept_all

pytestmark = pytest.mark.django_db(transaction=True)

LATE = 31_000  # ms: past both relaxation steps


@pytest.fixture
def meet_user(make_user):
    def make(interests=("chess",), region="europe", language="en"):
        return make_user(interests=list(interests), region=region, language=language)

    return make


def test_enter_records_the_match_with_shared_interests(meet_user):
    ann = meet_user(["chess", "go", "tea"])
    bob = meet_user(["go", "chess", "surf"])
    assert services.match_enter(user_id=ann.pk)["status"] == "waiting"
    got = services.match_enter(user_id=bob.pk)
    assert got["status"] == "matched"
    match = Match.objects.get(pk=got["match_id"])
    assert (match.user_a_id, match.user_b_id) == (bob.pk, ann.pk)
    assert sorted(match.shared_interests) == ["chess", "go"]
    assert match.ended_at is None
    assert bus().get(key("mm", "room", match.pk)) == f"{bob.pk}:{ann.pk}"


def test_unknown_interests_are_ignored(meet_user):
    ann = meet_user(["chess"])
    got = services.match_enter(user_id=ann.pk, interests=["Chess", "no-such-thing-xyz"])
    assert got["interests"] == ["chess"]
    with pytest.raises(Invalid):
        services.match_enter(user_id=ann.pk, interests="chess")
    with pytest.raises(Invalid):
        services.match_enter(user_id=ann.pk, region_mode="nearby")


def test_entering_while_in_a_match_is_a_conflict(meet_user):
    ann, bob = meet_user(), meet_user()
    services.match_enter(user_id=ann.pk)
    match_id = services.match_enter(user_id=bob.pk)["match_id"]
    with pytest.raises(Conflict) as exc:
        services.match_enter(user_id=ann.pk)
    assert exc.value.extra == {"match_id": match_id}
    services.match_skip(user_id=ann.pk)
    assert services.match_enter(user_id=ann.pk)["status"] == "waiting"


def test_skip_when_not_matched_is_invalid_and_not_mine_is_forbidden(meet_user):
    ann, bob, eve = meet_user(), meet_user(), meet_user(region="asia")
    with pytest.raises(Invalid):
        services.match_skip(user_id=ann.pk)
    services.match_enter(user_id=ann.pk)
    match_id = services.match_enter(user_id=bob.pk)["match_id"]
    with pytest.raises(Forbidden):
        services.match_skip(user_id=eve.pk, match_id=match_id)
    services.match_skip(user_id=bob.pk, match_id=match_id)
    with pytest.raises(Invalid):
        services.match_skip(user_id=ann.pk, match_id=match_id)
    match = Match.objects.get(pk=match_id)
    assert (match.end_reason, match.ended_by_id) == ("skip", bob.pk)


def test_a_block_stops_matching_and_direct_messages(meet_user):
    ann, bob = meet_user(), meet_user()
    conv, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    accept_all(conv)
    message_send(sender_id=ann.pk, conversation_id=conv.pk, body="hi", client_id="1")
    services.block_create(user_id=bob.pk, blocked_id=ann.pk)
    for sender, cid in ((ann.pk, "2"), (bob.pk, "3")):
        with pytest.raises(ConversationForbidden) as exc:
            message_send(sender_id=sender, conversation_id=conv.pk, body="hi", client_id=cid)
        assert exc.value.code == "blocked"
    now = pool.now_ms()
    services.match_enter(user_id=ann.pk, now=now)
    assert services.match_enter(user_id=bob.pk, now=now)["status"] == "waiting"
    assert services.match_decide(user_id=bob.pk, now=now + LATE) is None


def test_blocking_my_partner_ends_our_match(meet_user):
    ann, bob = meet_user(), meet_user()
    services.match_enter(user_id=ann.pk)
    match_id = services.match_enter(user_id=bob.pk)["match_id"]
    block = services.block_create(user_id=ann.pk, match_id=match_id)
    assert (block.blocked_id, block.match_id) == (bob.pk, match_id)
    match = Match.objects.get(pk=match_id)
    assert (match.end_reason, match.ended_by_id) == ("block", ann.pk)
    with pytest.raises(Invalid):
        services.block_create(user_id=ann.pk, blocked_id=ann.pk)


def test_avoid_sets_are_rebuilt_from_postgresql(meet_user):
    ann = meet_user(["alpha", "beta", "gamma"])
    bob, cat, dan = meet_user(["alpha"]), meet_user(["beta"]), meet_user(["gamma"])
    Block.objects.create(blocker=bob, blocked=ann)
    Match.objects.create(user_a=cat, user_b=ann, ended_at=timezone.now(), end_reason="skip")
    bus().delete(pool.avoid_key(ann.pk))  # Redis lost it (restart, eviction, expiry)
    now = pool.now_ms()
    for user in (bob, cat, dan):  # they share nothing with each other: all wait
        services.match_enter(user_id=user.pk, now=now - 10_000)
    got = services.match_enter(user_id=ann.pk, now=now)
    assert got["status"] == "matched"
    assert Match.objects.get(pk=got["match_id"]).user_b_id == dan.pk
    avoid = dict(bus().zrange(pool.avoid_key(ann.pk), 0, -1, withscores=True))
    assert avoid[str(bob.pk)] == pool.AVOID_FOREVER_MS
    assert now < avoid[str(cat.pk)] < pool.AVOID_FOREVER_MS
    assert pool.AVOID_COMPLETE in avoid


def test_recent_partners_wait_for_the_window(meet_user, settings):
    ann, bob = meet_user(), meet_user()
    now = pool.now_ms()
    services.match_enter(user_id=ann.pk, now=now)
    services.match_skip(user_id=ann.pk, match_id=services.match_enter(user_id=bob.pk, now=now)[
        "match_id"
    ])  # fmt: skip
    services.match_enter(user_id=ann.pk, now=now + 1000)
    assert services.match_enter(user_id=bob.pk, now=now + 1000)["status"] == "waiting"
    assert services.match_decide(user_id=bob.pk, now=now + 1000 + LATE) is None


def test_report_needs_my_match_a_reason_and_bounded_text(meet_user):
    ann, bob, eve = meet_user(), meet_user(), meet_user(region="asia")
    services.match_enter(user_id=ann.pk)
    match_id = services.match_enter(user_id=bob.pk)["match_id"]
    with pytest.raises(Forbidden):
        services.report_create(user_id=eve.pk, match_id=match_id, reason="spam")
    with pytest.raises(Invalid):
        services.report_create(user_id=ann.pk, match_id=match_id, reason="boring")
    with pytest.raises(Invalid):
        services.report_create(user_id=ann.pk, match_id=match_id, reason="spam", text="x" * 1001)
    report = services.report_create(
        user_id=ann.pk, match_id=match_id, reason="harassment", text=" rude "
    )
    assert (report.reported_id, report.text) == (bob.pk, "rude")
    with pytest.raises(Conflict):
        services.report_create(user_id=ann.pk, match_id=match_id, reason="spam")
    assert Report.objects.count() == 1


def test_the_sweep_relaxes_waiting_seekers_and_drops_expired_tickets(meet_user, settings):
    ann, bob = meet_user(["chess"]), meet_user(["surf"])
    cat = meet_user(["opera"], language="de")
    now = pool.now_ms()
    services.match_enter(user_id=ann.pk, now=now)
    services.match_enter(user_id=bob.pk, now=now)
    services.match_enter(user_id=cat.pk, now=now)
    assert services.pool_sweep(now=now + 1000)["matched"] == 0
    swept = services.pool_sweep(now=now + 16_000)  # no shared interest needed any more
    assert swept["matched"] == 1
    assert Match.objects.filter(shared_interests=[]).count() == 1
    assert pool.pool_size() == 1  # cat: nobody speaks German
    ttl = settings.LIMITS["MATCH_TICKET_TTL_SECONDS"] * 1000
    assert services.pool_sweep(now=now + ttl + 1)["expired"] == 1
    assert pool.pool_size() == 0
    swept = services.pool_sweep(now=now + ttl + 1)
    assert swept == {"expired": 0, "matched": 0, "rooms_ended": 0, "partners_left": 0}


def test_the_sweep_ends_rooms_open_too_long(meet_user, settings):
    ann, bob = meet_user(), meet_user()
    services.match_enter(user_id=ann.pk)
    match_id = services.match_enter(user_id=bob.pk)["match_id"]
    old = timezone.now() - timezone.timedelta(seconds=settings.LIMITS["MATCH_MAX_SECONDS"] + 5)
    Match.objects.filter(pk=match_id).update(created_at=old)
    assert services.pool_sweep()["rooms_ended"] == 1
    assert Match.objects.get(pk=match_id).end_reason == "expired"
    assert not bus().exists(key("mm", "cur", ann.pk))


def test_the_sweep_task_runs_under_a_redis_lock(meet_user):
    ann, bob = meet_user(["chess"]), meet_user(["surf"])
    past = pool.now_ms() - 20_000  # both have waited 20 s: step 1 is due
    services.match_enter(user_id=ann.pk, now=past)
    services.match_enter(user_id=bob.pk, now=past)
    lock = key("lock", "run", "matching.tasks.pool_sweep")
    bus().set(lock, "someone-else", px=10_000)
    tasks.pool_sweep.apply()
    assert Match.objects.count() == 0  # another sweep holds the lock: this one did nothing
    bus().delete(lock, key("lock", "period", "matching.tasks.pool_sweep"))
    tasks.pool_sweep.apply()
    assert Match.objects.count() == 1
