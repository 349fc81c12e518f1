"""The pool and the decision script (match.lua), on Redis 7 and on Redis 6.2.

Time is passed in, so relaxation and TTLs are tested at chosen instants, never by sleeping.
"""

from matching import pool

S = 1000  # ms per second
LATE = 31 * S  # past both relaxation steps (15 s, 30 s), inside the ticket TTL


def test_best_scoring_partner_is_chosen(mpool):
    mpool.wait(1, ["chess", "jazz"], at=mpool.now - 3 * S)  # longest waiting, shares 1
    mpool.wait(2, ["chess", "jazz", "go", "poker"], at=mpool.now - 2 * S)  # shares 3
    mpool.wait(3, ["chess", "go", "poker"], at=mpool.now - 1 * S)  # shares 2
    got = mpool.enter(9, ["chess", "go", "poker", "tea"])
    assert got.status == "matched"
    assert got.partner_id == 2
    assert sorted(got.shared) == ["chess", "go", "poker"]


def test_ties_go_to_the_longest_waiting(mpool):
    mpool.wait(1, ["chess", "go"], at=mpool.now - 1 * S)
    mpool.wait(2, ["go", "chess"], at=mpool.now - 5 * S)
    mpool.wait(3, ["chess", "go"], at=mpool.now - 3 * S)
    assert mpool.enter(9, ["chess", "go"]).partner_id == 2


def test_the_pair_leaves_the_pool_in_the_same_decision(mpool):
    mpool.wait(1, ["chess"], channel="c1")
    got = mpool.enter(2, ["chess"], channel="c2")
    assert (got.status, got.partner_id, got.partner_channel, got.channel) == (
        "matched",
        1,
        "c1",
        "c2",
    )
    assert pool.pool_size(client=mpool.client, prefix=mpool.prefix) == 0
    assert mpool.ticket_keys() == set()
    # Both are now "in a match": entering again is refused until the room ends.
    assert mpool.enter(1, ["chess"]).status == "busy"


def test_language_is_a_hard_filter_even_after_relaxation(mpool):
    mpool.wait(1, ["chess"], lang="de")
    assert mpool.enter(2, ["chess"], lang="en").status == "waiting"
    late = mpool.now + LATE
    assert mpool.decide(2, at=late).status == "waiting"


def test_region_preference_is_dropped_at_the_second_step(mpool):
    mpool.wait(1, ["chess"], region="europe")
    got = mpool.enter(2, ["chess"], region="asia")
    assert (got.status, got.step) == ("waiting", 0)
    assert mpool.decide(2, at=mpool.now + 16 * S).status == "waiting"  # step 1: region kept
    assert mpool.decide(2, at=mpool.now + 31 * S).partner_id == 1  # step 2: any region


def test_same_region_is_preferred_from_the_first_decision(mpool):
    mpool.wait(1, ["chess"], region="asia", at=mpool.now - 2 * S)
    mpool.wait(2, ["chess"], region="europe", at=mpool.now - 1 * S)
    assert mpool.enter(3, ["chess"], region="europe").partner_id == 2


def test_region_requirement_is_never_relaxed_on_either_side(mpool):
    mpool.wait(1, ["chess"], region="europe", mode="require")
    mpool.enter(2, ["chess"], region="asia")
    assert mpool.decide(2, at=mpool.now + LATE).status == "waiting"
    mpool.enter(3, ["chess"], region="asia", mode="any", at=mpool.now + LATE)
    # 3 (any region) takes 2 (relaxed); 1 still waits for someone from Europe.
    assert mpool.decide(1, at=mpool.now + LATE).status == "waiting"
    assert mpool.enter(4, ["chess"], region="europe", at=mpool.now + LATE).partner_id == 1


def test_no_shared_interest_is_accepted_at_the_first_step(mpool):
    mpool.wait(1, ["chess"])
    assert mpool.enter(2, ["surfing"]).status == "waiting"
    got = mpool.decide(2, at=mpool.now + 16 * S)
    assert (got.status, got.partner_id, got.shared) == ("matched", 1, [])


def test_a_seeker_without_interests_is_matched_after_widening(mpool):
    mpool.wait(1, [])
    assert mpool.enter(2, []).status == "waiting"
    assert mpool.decide(2, at=mpool.now + 16 * S).partner_id == 1


def test_relaxation_is_mutual(mpool):
    """A fresh seeker does not take a stranger with nothing in common, however long that
    stranger waited; the stranger takes the fresh one once the fresh one relaxed too."""
    mpool.wait(1, ["chess"], at=mpool.now - 60 * S)
    assert mpool.enter(2, ["surfing"]).status == "waiting"
    assert mpool.decide(1, at=mpool.now + 1 * S).status == "waiting"
    assert mpool.decide(1, at=mpool.now + 16 * S).partner_id == 2


def test_blocked_pairs_are_never_matched(mpool):
    mpool.wait(1, ["chess", "go"])
    mpool.avoid(2, {1: pool.AVOID_FOREVER_MS})
    assert mpool.enter(2, ["chess", "go"], avoid=False).status == "waiting"
    assert mpool.decide(2, at=mpool.now + LATE).status == "waiting"
    mpool.wait(3, ["tea"])
    assert mpool.decide(2, at=mpool.now + LATE).partner_id == 3


def test_recent_partners_are_not_matched_again_inside_the_window(mpool):
    mpool.wait(1, ["chess"])
    assert mpool.enter(2, ["chess"]).partner_id == 1
    for uid in (1, 2):  # the room ended
        mpool.client.delete(f"{mpool.prefix}:cur:{uid}")
    later = mpool.now + 60 * S
    mpool.wait(1, ["chess"], at=later, avoid=False)
    assert mpool.enter(2, ["chess"], at=later, avoid=False).status == "waiting"
    window = mpool.config.recent_ms
    assert mpool.decide(2, at=mpool.now + window + S).status == "gone"  # tickets expired
    after = mpool.now + window + S
    mpool.wait(1, ["chess"], at=after, avoid=False)
    assert mpool.enter(2, ["chess"], at=after, avoid=False).partner_id == 1


def test_a_missing_avoid_set_asks_for_a_rebuild(mpool):
    mpool.wait(1, ["chess"])
    got = mpool.enter(2, ["chess"], avoid=False)
    assert got.status == "rebuild"
    assert pool.pool_size(client=mpool.client, prefix=mpool.prefix) == 2  # still waiting
    mpool.avoid(2)
    assert mpool.decide(2, at=mpool.now).partner_id == 1


def test_entering_twice_keeps_one_ticket_and_its_place(mpool):
    mpool.wait(1, ["chess", "go"], region="europe", channel="a")
    mpool.wait(1, ["chess"], region="europe", channel="b", at=mpool.now + 30 * S)
    ticket = pool.pool_ticket(user_id=1, client=mpool.client, prefix=mpool.prefix)
    assert ticket["joined"] == str(mpool.now)
    assert ticket["chan"] == "b"
    assert pool.pool_size(client=mpool.client, prefix=mpool.prefix) == 1
    assert mpool.client.zcard(f"{mpool.prefix}:ll:en") == 1
    assert not mpool.client.exists(f"{mpool.prefix}:il:en:go")  # old interest unindexed


def test_leaving_removes_every_trace_and_respects_the_channel(mpool):
    mpool.wait(1, ["chess", "go"], region="europe", channel="conn-a")
    assert not pool.pool_leave(
        user_id=1, channel="conn-b", client=mpool.client, prefix=mpool.prefix
    )
    assert pool.pool_size(client=mpool.client, prefix=mpool.prefix) == 1
    assert pool.pool_leave(user_id=1, channel="conn-a", client=mpool.client, prefix=mpool.prefix)
    assert mpool.ticket_keys() == set()


def test_expired_tickets_are_swept_and_never_matched(mpool):
    ttl = mpool.config.ttl_ms
    mpool.wait(1, ["chess", "go"], region="europe")
    mpool.wait(2, ["chess"], region="asia")
    late = mpool.now + ttl + S
    # Lazily: a seeker arriving after the TTL does not get the stale ticket...
    assert mpool.enter(3, ["chess"], region="europe", at=late).status == "waiting"
    assert pool.pool_leave(user_id=3, client=mpool.client, prefix=mpool.prefix)
    # ... and the sweep removes what is left.
    removed = pool.pool_expire(limit=100, now=late, client=mpool.client, prefix=mpool.prefix)
    assert removed >= 1
    assert mpool.ticket_keys() == set()


def test_every_pool_key_expires_by_itself(mpool):
    mpool.wait(1, ["chess", "go"], region="europe")
    mpool.wait(2, ["tea"], region="asia")
    limit = mpool.config.ttl_ms + mpool.config.grace_ms
    for name in mpool.ticket_keys():
        assert 0 < mpool.client.pttl(name) <= limit, name
    for name in mpool.all_keys():  # avoid sets too, with their own (longer) TTL
        assert mpool.client.pttl(name) > 0, name


def test_due_lists_seekers_whose_step_changed(mpool):
    mpool.enter(1, ["chess"])
    mpool.enter(2, ["surf"], at=mpool.now + 5 * S)
    due = lambda at: pool.pool_due(  # noqa: E731
        limit=10, now=at, client=mpool.client, prefix=mpool.prefix
    )
    assert due(mpool.now + 14 * S) == []
    assert due(mpool.now + 15 * S) == [1]
    assert due(mpool.now + 20 * S) == [1, 2]
    assert mpool.decide(1, at=mpool.now + 20 * S).partner_id == 2
    assert due(mpool.now + 60 * S) == []


def test_the_pool_size_is_bounded(mpool):
    mpool.config = pool.PoolConfig.from_settings(pool_max=2, trending=False)
    mpool.wait(1, ["a"])
    mpool.wait(2, ["b"])
    assert mpool.enter(3, ["c"]).status == "full"
    assert mpool.wait(1, ["a"]).status == "waiting"  # a refresh is not a new ticket


def test_a_candidate_deep_in_a_popular_list_gets_its_exact_score(mpool):
    """Lists longer than the window are cut; the refine step finds shared interests the
    window missed, so the better partner still wins."""
    mpool.config = pool.PoolConfig.from_settings(window=4, trending=False)
    for uid in range(1, 11):  # ten long-waiting "music" fans
        mpool.wait(uid, ["music"], at=mpool.now - 100 * S + uid)
    mpool.wait(50, ["music", "knitting"], at=mpool.now - S)  # newest; shares two
    assert mpool.enter(99, ["music", "knitting"]).partner_id == 50


def test_trending_counts_shared_interests_per_day(mpool):
    mpool.config = pool.PoolConfig.from_settings(trending=True)
    trend = pool.trending_key(mpool.now)
    try:
        mpool.wait(1, ["chess", "go"])
        mpool.enter(2, ["chess", "go", "tea"])
        mpool.wait(3, ["chess"])
        mpool.enter(4, ["chess"])
        assert mpool.client.zrevrange(trend, 0, -1, withscores=True) == [
            ("chess", 2.0),
            ("go", 1.0),
        ]
        days = mpool.config.trend_ttl_ms / 86_400_000
        assert 0 < mpool.client.pttl(trend) <= days * 86_400_000
    finally:
        mpool.client.delete(trend)


def test_the_script_runs_on_redis_6_2_and_7(mpool):
    version = mpool.client.info("server")["redis_version"]
    assert version.split(".")[0] in ("6", "7")
    mpool.wait(1, ["chess"], region="europe", mode="require")
    assert mpool.enter(2, ["chess"], region="europe").partner_id == 1
