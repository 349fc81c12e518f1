"""Meet over the WebSocket: events to every connection, the room, signalling, limits."""

import asyncio

import pytest
from channels.db import database_sync_to_async

from core.event_schema import EVENT_SCHEMAS
from matching import pool
from tests.conftest import ws_connect

pytestmark = pytest.mark.django_db(transaction=True)

SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@pytest.fixture
def people(make_user):
    """Two users who share interests and a third, Eve, from elsewhere."""

    def make():
        ann = make_user(interests=["chess", "jazz"], region="europe", display_name="Ann")
        bob = make_user(interests=["jazz", "chess", "go"], region="europe", display_name="Bob")
        eve = make_user(interests=["opera"], region="asia", language="fr")
        return ann, bob, eve

    return database_sync_to_async(make)


def _shape(event: dict) -> None:
    assert set(event["data"]) == set(EVENT_SCHEMAS[event["type"]]), event


async def _matched(ann_ws, bob_ws) -> int:
    assert (await ann_ws.request("match.enter"))["data"]["status"] == "waiting"
    reply = await bob_ws.request("match.enter")
    assert reply["data"]["status"] == "matched", reply
    return reply["data"]["match_id"]


async def test_match_found_reaches_both_users_on_every_connection(people):
    ann, bob, _ = await people()
    async with (
        ws_connect(ann) as ann_phone,
        ws_connect(ann) as ann_laptop,
        ws_connect(bob) as bob_ws,
    ):
        reply = await ann_phone.request("match.enter", {"region": "prefer"})
        assert reply["data"]["interests"] == ["chess", "jazz"]
        assert reply["data"]["refresh_seconds"] > 0
        match_id = (await bob_ws.request("match.enter"))["data"]["match_id"]
        for ws, partner, initiator in (
            (ann_phone, bob, False),
            (ann_laptop, bob, False),
            (bob_ws, ann, True),
        ):
            found = await ws.event("match.found")
            _shape(found)
            data = found["data"]
            assert data["match_id"] == match_id
            assert data["partner"]["user_id"] == partner.pk
            assert sorted(data["shared_interests"]) == ["chess", "jazz"]
            assert data["initiator"] is initiator


async def test_room_text_and_signalling_reach_only_the_partner(people):
    ann, bob, eve = await people()
    async with ws_connect(ann) as ann_ws, ws_connect(bob) as bob_ws, ws_connect(eve) as eve_ws:
        match_id = await _matched(ann_ws, bob_ws)
        said = await ann_ws.request("match.say", {"match_id": match_id, "text": "hello"})
        assert said["ok"], said
        message = await bob_ws.event("match.message")
        _shape(message)
        assert (message["data"]["from_user_id"], message["data"]["text"]) == (ann.pk, "hello")

        offer = {"match_id": match_id, "kind": "offer", "payload": {"type": "offer", "sdp": SDP}}
        assert (await bob_ws.request("match.signal", offer))["ok"]
        got = await ann_ws.event("match.signal")
        _shape(got)
        assert got["data"]["payload"] == {"type": "offer", "sdp": SDP}
        assert got["data"]["from_user_id"] == bob.pk
        ice = {"candidate": "candidate:1 1 udp 2122260223 10.0.0.2 50000 typ host",
               "sdpMid": "0", "sdpMLineIndex": 0}  # fmt: skip
        frame = {"match_id": match_id, "kind": "ice", "payload": ice}
        assert (await ann_ws.request("match.signal", frame))["ok"]
        assert (await bob_ws.event("match.signal"))["data"]["payload"]["candidate"] == ice[
            "candidate"
        ]
        end_of_ice = {"match_id": match_id, "kind": "ice", "payload": None}
        assert (await ann_ws.request("match.signal", end_of_ice))["ok"]
        assert (await bob_ws.event("match.signal"))["data"]["payload"] is None

        # Eve is not in the room: refused, and nothing leaks to her.
        for frame_type, data in (
            ("match.signal", offer),
            ("match.say", {"match_id": match_id, "text": "psst"}),
        ):
            reply = await eve_ws.request(frame_type, data)
            assert reply["error"]["code"] == "forbidden"
        reply = await eve_ws.request("match.say", {"match_id": 999_999_999, "text": "x"})
        assert reply["error"]["code"] == "not_found"
        assert not [e for e in await eve_ws.drain() if e["type"].startswith("match.")]
        # Senders do not get their own signals back.
        assert not [e for e in await ann_ws.drain() if e["type"] == "match.signal"]


async def test_signalling_payloads_are_bounded_and_checked(people, settings):
    ann, bob, _ = await people()
    async with ws_connect(ann) as ann_ws, ws_connect(bob) as bob_ws:
        match_id = await _matched(ann_ws, bob_ws)
        limit = settings.LIMITS["MATCH_SDP_MAX_CHARS"]
        big = {"type": "offer", "sdp": "a" * (limit + 1)}
        bad = [
            {"kind": "offer", "payload": big},
            {"kind": "ice", "payload": {"candidate": "c" * 1001}},
            {"kind": "ice", "payload": {"candidate": "c", "sdpMLineIndex": "zero"}},
            {"kind": "answer", "payload": {"sdp": 5}},
            {"kind": "bye", "payload": {}},
        ]
        for frame in bad:
            reply = await ann_ws.request("match.signal", {"match_id": match_id, **frame})
            assert reply["error"]["code"] == "invalid", frame
        reply = await ann_ws.request("match.say", {"match_id": match_id, "text": "x" * 1001})
        assert reply["error"]["code"] == "invalid"
        relayed = [
            e for e in await bob_ws.drain() if e["type"] in ("match.signal", "match.message")
        ]
        assert not relayed


async def test_skip_ends_the_match_for_both_and_can_requeue(people):
    ann, bob, _ = await people()
    async with ws_connect(ann) as ann_ws, ws_connect(bob) as bob_ws:
        reply = await ann_ws.request("match.skip")
        assert reply["error"]["code"] == "invalid"  # not in a match
        match_id = await _matched(ann_ws, bob_ws)
        reply = await ann_ws.request("match.skip", {"match_id": match_id, "requeue": True})
        assert reply["data"]["ended"] == match_id
        assert reply["data"]["enter"]["status"] == "waiting"  # Bob is a recent partner
        for ws in (ann_ws, bob_ws):
            ended = await ws.event("match.ended")
            _shape(ended)
            assert ended["data"] == {"match_id": match_id, "reason": "skip", "by_user_id": ann.pk}
        reply = await bob_ws.request("match.say", {"match_id": match_id, "text": "hey?"})
        assert reply["error"]["code"] == "invalid"  # the room is closed


async def test_disconnect_removes_only_the_ticket_entered_from_that_connection(people):
    ann, _, _ = await people()
    async with ws_connect(ann) as entering:
        async with ws_connect(ann) as other:
            assert (await entering.request("match.enter"))["ok"]
            assert (await other.request("ping"))["ok"]
        assert await database_sync_to_async(pool.pool_ticket)(user_id=ann.pk)
    ticket = await database_sync_to_async(pool.pool_ticket)(user_id=ann.pk)
    assert ticket == {}


async def test_cancel_leaves_the_pool(people):
    ann, _, _ = await people()
    async with ws_connect(ann) as ws:
        await ws.request("match.enter")
        assert (await ws.request("match.cancel"))["data"] == {"removed": True}
        assert (await ws.request("match.cancel"))["data"] == {"removed": False}


async def test_match_requests_are_rate_limited_with_a_retry_time(people, settings):
    ann, _, _ = await people()
    limit = settings.LIMITS["MATCH_RATE_PER_MINUTE"]
    async with ws_connect(ann) as ws:
        for _ in range(limit):  # entering again refreshes the one ticket
            assert (await ws.request("match.enter"))["ok"]
        reply = await ws.request("match.enter")
        error = reply["error"]
        assert error["code"] == "rate_limited"
        assert 0 < error["retry_after"] <= 60
        assert (await ws.request("ping"))["ok"]  # the socket stays open


async def test_block_and_report_frames(people):
    ann, bob, eve = await people()
    async with ws_connect(ann) as ann_ws, ws_connect(bob) as bob_ws:
        match_id = await _matched(ann_ws, bob_ws)
        reply = await bob_ws.request(
            "match.report", {"match_id": match_id, "reason": "spam", "text": "links"}
        )
        assert reply["data"]["report_id"] > 0
        reply = await bob_ws.request("match.block", {"match_id": match_id})
        assert reply["data"] == {"blocked_user_id": ann.pk}
        ended = await ann_ws.event("match.ended")
        assert ended["data"]["reason"] == "block"
        reply = await ann_ws.request("match.report", {"match_id": match_id, "reason": "nope"})
        assert reply["error"]["code"] == "invalid"


async def test_a_rate_limited_frame_carries_retry_after_but_no_http_headers(people, settings):
    settings.LIMITS = {**settings.LIMITS, "MATCH_RATE_PER_MINUTE": 1}
    ann, _bob, _eve = await people()
    async with ws_connect(ann, sync={}) as ws:
        await ws.request("match.enter", {})
        reply = await ws.request("match.enter", {})
    assert reply["error"]["code"] == "rate_limited"
    assert reply["error"]["retry_after"] >= 1
    assert set(reply["error"]) == {"code", "message", "retry_after"}


async def test_fields_of_the_wrong_type_are_invalid_not_internal(people):
    # A list or an object where a string is expected was a TypeError (unhashable) and an
    # ``internal`` reply; every one must be ``invalid`` and leave no ticket behind.
    ann, bob, _ = await people()
    async with ws_connect(ann) as ann_ws:
        for data in (
            {"region": []},
            {"region": {}},
            {"region": 5},
            {"interests": {}},
            {"interests": "chess"},
            {"interests": [[]]},
            {"interests": [{}]},
            {"interests": [None]},
        ):
            reply = await ann_ws.request("match.enter", data)
            assert reply["error"]["code"] == "invalid", (data, reply)
        assert await database_sync_to_async(pool.pool_ticket)(user_id=ann.pk) == {}
        async with ws_connect(bob) as bob_ws:
            match_id = await _matched(ann_ws, bob_ws)
            for data in (
                {"match_id": match_id, "requeue": True, "region": []},
                {"match_id": [match_id]},
                {"match_id": {}, "requeue": True},
            ):
                reply = await ann_ws.request("match.skip", data)
                assert reply["error"]["code"] == "invalid", (data, reply)
            # The refused requeue ended nothing: the room is still open.
            said = await ann_ws.request("match.say", {"match_id": match_id, "text": "still here"})
            assert said["ok"], said


async def test_lone_surrogates_in_room_text_and_signalling_are_refused(people):
    # They were acknowledged and then lost: the channel layer cannot encode them.
    ann, bob, _ = await people()
    async with ws_connect(ann) as ann_ws, ws_connect(bob) as bob_ws:
        match_id = await _matched(ann_ws, bob_ws)
        candidate = "candidate:1 1 udp 2122260223 10.0.0.2 50000 typ host"

        def ice(**fields):
            return {"kind": "ice", "payload": {"candidate": candidate, **fields}}

        bad = [
            ("match.say", {"text": "hi \ud800"}),
            ("match.say", {"text": "nul\x00"}),
            ("match.signal", {"kind": "offer", "payload": {"sdp": SDP + "a=x:\udfff\r\n"}}),
            ("match.signal", {"kind": "answer", "payload": {"sdp": "\ud83d"}}),
            ("match.signal", ice(candidate=candidate + "\ud800")),
            ("match.signal", ice(sdpMid="\ud800")),
            ("match.signal", ice(usernameFragment="\udc00")),
        ]
        for frame_type, data in bad:
            reply = await ann_ws.request(frame_type, {"match_id": match_id, **data})
            assert reply["error"]["code"] == "invalid", (data, reply)
        # A real pair of surrogates (an emoji) is fine and arrives.
        assert (await ann_ws.request("match.say", {"match_id": match_id, "text": "hi 😀"}))["ok"]
        assert (await bob_ws.event("match.message"))["data"]["text"] == "hi 😀"
        relayed = [
            e for e in await bob_ws.drain() if e["type"] in ("match.signal", "match.message")
        ]
        assert not relayed


async def _sweep_until_ended(ws, timeout: float = 10.0) -> dict:
    """Run the sweep (Celery Beat's job) until ``ws`` hears ``match.ended``."""
    from matching import services

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await database_sync_to_async(services.pool_sweep)()
        try:
            return await ws.event("match.ended", timeout=0.2)
        except TimeoutError:
            if asyncio.get_running_loop().time() > deadline:
                raise


async def test_a_partner_whose_last_connection_closed_has_left_after_the_grace(people, settings):
    from matching import services
    from matching.models import Match

    settings.LIMITS = {**settings.LIMITS, "MEET_PARTNER_GRACE_SECONDS": 0.6}
    ann, bob, _ = await people()
    async with ws_connect(ann) as ann_ws:
        async with ws_connect(bob) as bob_ws, ws_connect(bob) as bob_other:
            match_id = await _matched(ann_ws, bob_ws)
            assert (await bob_other.request("match.current"))["ok"]  # a second Meet view
        # Bob's connections are closed; within the grace nothing happens.
        swept = await database_sync_to_async(services.pool_sweep)()
        assert swept["partners_left"] == 0
        ended = await _sweep_until_ended(ann_ws)
        _shape(ended)
        assert ended["data"] == {
            "match_id": match_id,
            "reason": "partner_left",
            "by_user_id": bob.pk,
        }
        match = await database_sync_to_async(Match.objects.get)(pk=match_id)
        assert (match.end_reason, match.ended_by_id) == ("partner_left", bob.pk)
        assert match.ended_at is not None
        # Ann can search again at once.
        assert (await ann_ws.request("match.enter"))["data"]["status"] == "waiting"


async def test_a_connection_that_comes_back_within_the_grace_keeps_the_match(people, settings):
    from matching import services

    settings.LIMITS = {**settings.LIMITS, "MEET_PARTNER_GRACE_SECONDS": 0.6}
    ann, bob, _ = await people()
    async with ws_connect(ann) as ann_ws:
        async with ws_connect(bob) as bob_ws:
            match_id = await _matched(ann_ws, bob_ws)
        async with ws_connect(bob) as bob_back:  # a reload: a new socket asks for its match
            reply = await bob_back.request("match.current", {"rejoin": True})
            assert reply["data"]["match"]["match_id"] == match_id
            for _ in range(4):  # twice the grace: the new socket keeps Bob in the room
                await asyncio.sleep(0.3)
                assert (await database_sync_to_async(services.pool_sweep)())["partners_left"] == 0
            assert not [e for e in await ann_ws.drain(0.1) if e["type"] == "match.ended"]


async def test_current_match_and_rejoin_tell_the_partner_and_my_other_views(people):
    ann, bob, _ = await people()
    async with (
        ws_connect(ann) as ann_ws,
        ws_connect(bob) as bob_ws,
        ws_connect(bob) as bob_tab,
    ):
        assert (await bob_tab.request("match.current"))["data"] == {"match": None}
        match_id = await _matched(ann_ws, bob_ws)
        reply = await bob_tab.request("match.current")
        assert "rejoin_id" not in reply["data"]  # a read: nobody is told
        view = reply["data"]["match"]
        assert view["match_id"] == match_id
        assert view["partner"]["user_id"] == ann.pk
        assert view["initiator"] is True  # Bob's decision made the match: he offers first
        assert sorted(view["shared_interests"]) == ["chess", "jazz"]
        found = await bob_ws.event("match.found")
        assert view == found["data"]

        reply = await bob_tab.request("match.current", {"rejoin": True})
        rejoin_id = reply["data"]["rejoin_id"]
        for ws in (ann_ws, bob_ws, bob_tab):
            event = await ws.event("match.rejoined")
            _shape(event)
            data = {"match_id": match_id, "user_id": bob.pk, "rejoin_id": rejoin_id}
            assert event["data"] == data
        reply = await bob_tab.request("match.current", {"rejoin": "yes"})
        assert reply["error"]["code"] == "invalid"


async def test_a_conflict_on_enter_names_the_match(people):
    ann, bob, _ = await people()
    async with ws_connect(ann) as ann_ws, ws_connect(bob) as bob_ws:
        match_id = await _matched(ann_ws, bob_ws)
        reply = await ann_ws.request("match.enter")
        assert reply["error"]["code"] == "conflict"
        assert reply["error"]["match_id"] == match_id
