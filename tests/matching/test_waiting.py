"""The waiting view's facts: what a ticket searches for, who could match, when it widens,
recent partners kept away; and the searches refused instead of silently accepted."""

import pytest
from channels.db import database_sync_to_async

from core.errors import Invalid
from matching import pool, selectors, services
from tests.conftest import api_as, ws_connect

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def meet_user(make_user):
    def make(interests=("chess",), region="europe", language="en"):
        return make_user(interests=list(interests), region=region, language=language)

    return make


def test_the_enter_reply_says_what_is_searched_and_who_could_match(meet_user):
    now = pool.now_ms()
    # Waiting already: two in English in Europe, one in English in Asia, one in French.
    for interests, region, language in (
        (["go"], "europe", "en"),
        (["surf"], "europe", "en"),
        (["go"], "asia", "en"),
        (["chess"], "europe", "fr"),
    ):
        user = meet_user(interests, region=region, language=language)
        assert services.match_enter(user_id=user.pk, now=now)["status"] == "waiting"
    ann = meet_user(["chess"])
    got = services.match_enter(user_id=ann.pk, now=now + 1000)
    assert got["status"] == "waiting"
    search = got["search"]
    assert search["waiting"] is True
    assert (search["language"], search["region"], search["region_mode"]) == (
        "en",
        "europe",
        "prefer",
    )
    assert search["interests"] == ["chess"]
    assert search["same_region"] is True
    assert search["others_waiting"] == 2  # English speakers in Europe; not me, not French
    assert search["step"] == 0
    assert search["next_step"]["step"] == 1
    assert search["next_step"]["drops"] == "interests"
    assert search["next_step"]["in_seconds"] == 15.0
    assert search["recent_partners"] == 0
    assert search["recent_partner_seconds"] == 1800
    # Once the region is dropped (step 2), the whole language counts.
    later = selectors.waiting_status(user_id=ann.pk, now=now + 31_000)
    assert (later["step"], later["same_region"], later["others_waiting"]) == (2, False, 3)
    assert later["next_step"] is None
    middle = selectors.waiting_status(user_id=ann.pk, now=now + 20_000)
    assert (middle["step"], middle["next_step"]["drops"]) == (1, "region")
    assert middle["next_step"]["in_seconds"] == 11.0


def test_the_region_step_is_only_announced_when_it_changes_something(meet_user):
    ann = meet_user(["chess"], region="")
    now = pool.now_ms()
    services.match_enter(user_id=ann.pk, now=now)
    status = selectors.waiting_status(user_id=ann.pk, now=now + 16_000)
    assert (status["step"], status["region"], status["next_step"]) == (1, "", None)
    bob = meet_user(["chess"], region="asia")
    services.match_enter(user_id=bob.pk, region_mode="any", now=now)  # matched with ann
    cat = meet_user(["opera"])
    services.match_enter(user_id=cat.pk, region_mode="require", now=now)
    status = selectors.waiting_status(user_id=cat.pk, now=now + 16_000)
    assert (status["region_mode"], status["same_region"], status["next_step"]) == (
        "require",
        True,
        None,
    )


def test_recent_partners_are_counted_as_kept_away(meet_user):
    ann, bob = meet_user(), meet_user()
    now = pool.now_ms()
    services.match_enter(user_id=ann.pk, now=now)
    match_id = services.match_enter(user_id=bob.pk, now=now)["match_id"]
    services.match_skip(user_id=ann.pk, match_id=match_id)
    services.block_create(user_id=ann.pk, blocked_id=meet_user().pk)  # a block is not counted
    got = services.match_enter(user_id=ann.pk, now=now + 1000)
    assert got["search"]["recent_partners"] == 1
    # After the window the partner may come back, and is no longer counted.
    later = services.match_enter(user_id=ann.pk, now=now + 1_800_500)
    assert later["search"]["recent_partners"] == 0


def test_not_waiting_says_so():
    status = selectors.waiting_status(user_id=987_654)
    assert status == {"waiting": False, "recent_partner_seconds": 1800}


def test_only_my_region_without_a_region_is_refused(meet_user):
    ann = meet_user(region="")
    with pytest.raises(Invalid) as exc:
        services.match_enter(user_id=ann.pk, region_mode="require")
    assert "region" in exc.value.message
    assert exc.value.extra["fields"] == {"region": "Your profile has no region."}
    assert pool.pool_ticket(user_id=ann.pk) == {}  # nothing was written
    # Requeueing after a skip is refused before the match ends.
    bob = meet_user(region="")
    services.match_enter(user_id=ann.pk)
    match_id = services.match_enter(user_id=bob.pk)["match_id"]
    with pytest.raises(Invalid):
        services.match_skip(user_id=ann.pk, requeue=True, region_mode="require")
    assert services.match_skip(user_id=ann.pk, match_id=match_id) == {"ended": match_id}


def test_unknown_interests_are_named_in_the_reply(meet_user):
    ann = meet_user(["chess"])
    got = services.match_enter(user_id=ann.pk, interests=["Chess", "no-such-thing-xyz"])
    assert got["interests"] == ["chess"]
    assert got["ignored_interests"] == ["no-such-thing-xyz"]
    assert got["search"]["interests"] == ["chess"]


def test_rest_get_queue_and_the_region_error(meet_user):
    ann = meet_user(region="")
    client = api_as(ann)
    assert client.get("/api/meet/queue").json()["waiting"] is False
    refused = client.post("/api/meet/queue", {"region": "require"}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid")
    assert refused.json()["fields"] == {"region": "Your profile has no region."}
    assert client.post("/api/meet/queue", {}, format="json").json()["search"]["waiting"]
    status = client.get("/api/meet/queue").json()
    assert (status["waiting"], status["language"], status["refresh_seconds"]) == (True, "en", 5)


async def test_the_waiting_frame_reports_the_ticket(make_user):
    ann = await database_sync_to_async(make_user)(interests=["chess"], region="europe")
    async with ws_connect(ann) as ws:
        idle = await ws.request("match.waiting")
        assert idle["data"]["waiting"] is False
        entered = await ws.request("match.enter", {"region": "require"})
        assert entered["data"]["search"]["region_mode"] == "require"
        reply = await ws.request("match.waiting")
        assert reply["ok"], reply
        assert reply["data"]["waiting"] is True
        assert reply["data"]["others_waiting"] == 0
