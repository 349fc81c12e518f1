"""Meet's REST endpoints: pool with rate-limit headers, ICE servers, trending, safety."""

import base64
import hashlib
import hmac

import pytest

from core.redis import bus, key
from matching import pool
from tests.conftest import api_as

pytestmark = pytest.mark.django_db(transaction=True)


def test_entering_is_limited_to_ten_a_minute_with_headers(make_user):
    client = api_as(make_user(interests=["chess"]))
    before = pool.pool_size()  # tickets of earlier tests in this run may still be waiting
    for i in range(10):
        response = client.post("/api/meet/queue", {}, format="json")
        assert response.status_code == 200, response.content
        assert response["X-RateLimit-Limit"] == "10"
        assert response["X-RateLimit-Remaining"] == str(9 - i)
        assert 0 < int(response["X-RateLimit-Reset"]) <= 60
        assert "Retry-After" not in response
    response = client.post("/api/meet/queue", {}, format="json")
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert response["X-RateLimit-Remaining"] == "0"
    assert 0 < int(response["Retry-After"]) <= 60
    assert response["Retry-After"] == response["X-RateLimit-Reset"]
    assert pool.pool_size() == before + 1  # ten requests, one ticket


def test_the_counter_always_carries_a_ttl(make_user):
    user = make_user()
    name = key("rl", "match", user.pk)
    bus().set(name, 3)  # a counter left without a TTL (not by us) is healed
    response = api_as(user).post("/api/meet/queue", {}, format="json")
    assert response["X-RateLimit-Remaining"] == "6"
    assert 0 < bus().pttl(name) <= 60_000


def test_rest_enter_and_leave(make_user):
    ann = make_user(interests=["chess"], region="europe")
    bob = make_user(interests=["chess"], region="europe")
    assert api_as(ann).post("/api/meet/queue", {}, format="json").json()["status"] == "waiting"
    assert api_as(ann).delete("/api/meet/queue").json() == {"removed": True}
    response = api_as(ann).post("/api/meet/queue", {"region": "sideways"}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    api_as(ann).post("/api/meet/queue", {"interests": ["Chess"]}, format="json")
    body = api_as(bob).post("/api/meet/queue", {}, format="json").json()
    assert body["status"] == "matched" and body["match_id"]
    response = api_as(bob).post("/api/meet/queue", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "conflict")
    assert response.json()["match_id"] == body["match_id"]


def test_my_current_match(make_user):
    ann = make_user(interests=["chess"], region="europe", display_name="Ann")
    bob = make_user(interests=["chess"], region="europe")
    assert api_as(ann).get("/api/meet/current").json() == {"match": None}
    api_as(ann).post("/api/meet/queue", {}, format="json")
    match_id = api_as(bob).post("/api/meet/queue", {}, format="json").json()["match_id"]
    mine = api_as(bob).get("/api/meet/current").json()["match"]
    assert mine["match_id"] == match_id
    assert mine["partner"]["user_id"] == ann.pk
    assert mine["partner"]["display_name"] == "Ann"
    assert (mine["initiator"], mine["shared_interests"]) == (True, ["chess"])
    assert api_as(ann).get("/api/meet/current").json()["match"]["initiator"] is False


def test_enter_fields_of_the_wrong_type_are_a_400(make_user):
    client = api_as(make_user(interests=["chess"]))
    for body in ({"region": []}, {"region": {}}, {"interests": {}}, {"interests": [["x"]]}):
        response = client.post("/api/meet/queue", body, format="json")
        assert (response.status_code, response.json()["code"]) == (400, "invalid"), body
    assert pool.pool_ticket(user_id=client.user.pk) == {}


def test_ice_servers_give_stun_and_coturn_rest_credentials(make_user, settings):
    settings.MEET_STUN_URLS = ["stun:stun.example.org:3478"]
    settings.MEET_TURN_URLS = ["turn:turn.example.org:3478?transport=udp"]
    settings.MEET_TURN_SECRET = "s3cret"
    user = make_user()
    body = api_as(user).get("/api/meet/ice-servers").json()
    stun, turn = body["ice_servers"]
    assert stun == {"urls": ["stun:stun.example.org:3478"]}
    expiry, user_id = turn["username"].split(":")
    assert int(user_id) == user.pk
    assert int(expiry) > 0 and body["ttl"] == settings.LIMITS["TURN_CREDENTIAL_TTL_SECONDS"]
    expected = hmac.new(b"s3cret", turn["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(turn["credential"]) == expected
    settings.MEET_TURN_SECRET = ""  # no secret: no TURN entry rather than a broken one
    assert len(api_as(user).get("/api/meet/ice-servers").json()["ice_servers"]) == 1


def test_trending_top_and_rank(make_user):
    pairs = [(["chess", "go"], ["chess", "go"]), (["chess"], ["chess", "tea"])]
    for mine, theirs in pairs:
        a, b = make_user(interests=mine), make_user(interests=theirs)
        api_as(a).post("/api/meet/queue", {}, format="json")
        assert api_as(b).post("/api/meet/queue", {}, format="json").json()["status"] == "matched"
    client = api_as(make_user())
    assert client.get("/api/meet/trending?limit=5").json() == [
        {"interest": "chess", "score": 2, "rank": 1},
        {"interest": "go", "score": 1, "rank": 2},
    ]
    assert client.get("/api/meet/trending/go").json() == {"interest": "go", "rank": 2, "score": 1}
    assert client.get("/api/meet/trending/tea").json()["rank"] is None
    assert client.get("/api/meet/trending?limit=0").status_code == 400
    assert client.get("/api/meet/trending?limit=x").status_code == 400
    ttl = bus().pttl(pool.trending_key(pool.now_ms()))
    assert 0 < ttl <= 8 * 86_400_000  # old days expire by themselves


def test_block_and_report_endpoints(make_user):
    ann, bob = make_user(interests=["chess"]), make_user(interests=["chess"])
    api_as(ann).post("/api/meet/queue", {}, format="json")
    match_id = api_as(bob).post("/api/meet/queue", {}, format="json").json()["match_id"]
    response = api_as(ann).post(
        "/api/meet/reports", {"match_id": match_id, "reason": "hate"}, format="json"
    )
    assert response.status_code == 201
    response = api_as(ann).post("/api/meet/blocks", {"match_id": match_id}, format="json")
    assert (response.status_code, response.json()) == (201, {"blocked_user_id": bob.pk})
    response = api_as(ann).post("/api/meet/blocks", {"user_id": 10**9}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    response = api_as(ann).post("/api/meet/reports", ["x"], format="json")
    assert response.status_code == 400


def test_admin_lists_reports_with_the_match_history(make_user, admin_client):
    ann, bob = make_user(interests=["chess"]), make_user(interests=["chess"])
    api_as(ann).post("/api/meet/queue", {}, format="json")
    match_id = api_as(bob).post("/api/meet/queue", {}, format="json").json()["match_id"]
    api_as(ann).post("/api/meet/reports", {"match_id": match_id, "reason": "spam"}, format="json")
    from matching.models import Report

    report = Report.objects.get()
    assert admin_client.get("/admin/matching/report/").status_code == 200
    page = admin_client.get(f"/admin/matching/report/{report.pk}/change/").content.decode()
    assert f"#{match_id}" in page and "Match history of the reported user" in page
