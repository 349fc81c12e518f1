"""A room's short memory for reports (matching/roomlog.py): signalling metadata, copied into
every report; the last text lines, copied only when the reporter attaches them; bounded,
expiring, and cut short when the match ends."""

import pytest
from channels.db import database_sync_to_async
from django.conf import settings

from core.redis import bus
from matching import pool, roomlog, services
from matching.models import Match, Report
from tests.conftest import api_as, ws_connect

pytestmark = pytest.mark.django_db(transaction=True)

SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
ICE = {"candidate": "candidate:1 1 udp 2122260223 10.0.0.1 5000 typ host", "sdpMid": "0"}


async def test_a_ws_report_keeps_signal_metadata_and_attached_lines(make_user):
    ann, bob = await database_sync_to_async(make_user)(), await database_sync_to_async(make_user)()
    match = await database_sync_to_async(Match.objects.create)(user_a=ann, user_b=bob)
    async with ws_connect(ann) as ann_ws, ws_connect(bob) as bob_ws:
        mid = match.pk
        for frame_type, data in (
            ("match.signal", {"match_id": mid, "kind": "offer", "payload": {"sdp": SDP}}),
            ("match.signal", {"match_id": mid, "kind": "ice", "payload": ICE}),
            ("match.signal", {"match_id": mid, "kind": "ice", "payload": None}),
            ("match.say", {"match_id": mid, "text": "hi there"}),
        ):
            assert (await ann_ws.request(frame_type, data))["ok"]
        assert (await bob_ws.request("match.say", {"match_id": mid, "text": "go away"}))["ok"]
        reply = await bob_ws.request(
            "match.report", {"match_id": mid, "reason": "harassment", "attach_lines": True}
        )
        assert reply["ok"], reply
    report = await database_sync_to_async(Report.objects.get)(pk=reply["data"]["report_id"])
    assert [(s["from"], s["kind"], s["size"]) for s in report.signals] == [
        (ann.pk, "offer", len(SDP)),
        (ann.pk, "ice", len(ICE["candidate"])),
        (ann.pk, "ice", 0),
    ]
    assert all(set(s) == {"at", "from", "kind", "size"} for s in report.signals)  # no content
    assert [(line["from"], line["text"]) for line in report.room_lines] == [
        (ann.pk, "hi there"),
        (bob.pk, "go away"),
    ]


def test_without_attach_the_lines_are_not_stored_and_the_rest_expires(make_user):
    ann, bob, cat = make_user(), make_user(), make_user()
    match = Match.objects.create(user_a=ann, user_b=bob)
    services.room_say(user_id=ann.pk, match_id=match.pk, text="secret")
    services.room_signal(user_id=bob.pk, match_id=match.pk, kind="answer", payload={"sdp": SDP})
    response = api_as(bob).post(
        "/api/meet/reports", {"match_id": match.pk, "reason": "spam"}, format="json"
    )
    assert response.status_code == 201
    report = Report.objects.get(pk=response.json()["report_id"])
    assert report.room_lines is None
    assert [s["kind"] for s in report.signals] == ["answer"]
    assert "secret" not in str(Report.objects.values().get(pk=report.pk))
    # While the room is open its record lives TTLS["ROOM_RECORD"]; once it ends, the short
    # window (a report just after a skip still finds it), then nothing.
    assert 0 < bus().ttl(pool.lines_key(match.pk)) <= settings.TTLS["ROOM_RECORD"]
    services.match_end(match_id=match.pk, reason="skip", by_user_id=ann.pk)
    for name in (pool.lines_key(match.pk), pool.signals_key(match.pk)):
        assert 0 < bus().ttl(name) <= settings.TTLS["ROOM_RECORD_AFTER_END"]
    response = api_as(ann).post(
        "/api/meet/reports",
        {"match_id": match.pk, "reason": "other", "attach_lines": True},
        format="json",
    )
    assert response.status_code == 201, response.json()
    attached = Report.objects.get(pk=response.json()["report_id"]).room_lines
    assert [line["text"] for line in attached] == ["secret"]
    # Another user's match is not theirs to report, attached or not.
    response = api_as(cat).post(
        "/api/meet/reports",
        {"match_id": match.pk, "reason": "spam", "attach_lines": True},
        format="json",
    )
    assert response.status_code == 403
    bad = api_as(bob).post(
        "/api/meet/reports",
        {"match_id": match.pk, "reason": "spam", "attach_lines": "yes"},
        format="json",
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid")


def test_the_record_is_bounded(make_user, settings):
    settings.LIMITS = {**settings.LIMITS, "MATCH_ROOM_LINES_MAX": 3, "MATCH_SIGNAL_LOG_MAX": 2}
    ann, bob = make_user(), make_user()
    match = Match.objects.create(user_a=ann, user_b=bob)
    for i in range(5):
        services.room_say(user_id=ann.pk, match_id=match.pk, text=f"line {i}")
        services.room_signal(user_id=ann.pk, match_id=match.pk, kind="ice", payload=None)
    assert [line["text"] for line in roomlog.lines_read(match_id=match.pk)] == [
        "line 2",
        "line 3",
        "line 4",
    ]
    assert len(roomlog.signals_read(match_id=match.pk)) == 2
