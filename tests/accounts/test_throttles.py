"""Throttles (core/throttles.py, on the cache) and log-in lock-out (django-axes).

The suite runs with throttles off (tests/settings.py); these tests set small rates.
"""

import httpx
import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import api_as, free_port

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.delete_pattern("throttle:*")
    yield
    cache.delete_pattern("throttle:*")


@pytest.fixture
def rates(settings):
    def set_rates(**scopes: str) -> None:
        settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, **scopes}

    return set_rates


def _assert_rate_limited(res) -> None:
    assert res.status_code == 429, res.content[:300]
    body = res.json()
    assert body["code"] == "rate_limited"
    assert body["message"]
    assert body["retry_after"] >= 1
    assert int(res["Retry-After"]) == body["retry_after"]


def test_profile_reads_are_throttled_per_user(rates, make_user):
    rates(profile_read="3/min")
    target, reader, other = make_user(), make_user(), make_user()
    client = api_as(reader)
    for _ in range(3):
        assert client.get(f"/api/users/{target.pk}/profile").status_code == 200
    res = client.get(f"/api/users/{target.pk}/profile")
    _assert_rate_limited(res)
    assert res["Retry-After"] in {str(s) for s in range(1, 61)}
    assert api_as(other).get(f"/api/users/{target.pk}/profile").status_code == 200


def test_api_log_ins_are_throttled_per_address_whatever_x_forwarded_for_says(rates, make_user):
    rates(login="2/min")
    user = make_user(password=PASSWORD)
    client = APIClient(REMOTE_ADDR="198.51.100.7")
    wrong = {"username": user.username, "password": "nope"}
    for i in range(2):
        res = client.post(
            "/api/auth/token", wrong, format="json", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}"
        )
        assert res.status_code == 401
    right = {"username": user.username, "password": PASSWORD}
    res = client.post("/api/auth/token", right, format="json", HTTP_X_FORWARDED_FOR="10.0.0.9")
    _assert_rate_limited(res)
    res = client.post("/api/auth/session", right, format="json")  # the same scope
    _assert_rate_limited(res)
    assert client.get("/api/auth/session").status_code == 200  # only POSTs count
    other = APIClient(REMOTE_ADDR="198.51.100.8")
    assert other.post("/api/auth/token", right, format="json").status_code == 200


def test_sign_ups_and_tickets_are_throttled(rates, make_user):
    rates(signup="2/hour", ws_ticket="2/min")
    client = APIClient(REMOTE_ADDR="198.51.100.9")
    for name in ("sig1", "sig2"):
        res = client.post(
            "/api/auth/signup", {"username": name, "password": PASSWORD}, format="json"
        )
        assert res.status_code == 201, res.json()
    res = client.post("/api/auth/signup", {"username": "sig3", "password": PASSWORD}, format="json")
    _assert_rate_limited(res)
    # The sign-up page shares the scope and address: a 429 page, GET not counted.
    page = Client(REMOTE_ADDR="198.51.100.9")
    assert page.get("/accounts/signup/").status_code == 200
    res = page.post("/accounts/signup/", {"username": "sig4", "password": PASSWORD})
    assert res.status_code == 429
    assert int(res["Retry-After"]) >= 1
    user_client = api_as(make_user())
    for _ in range(2):
        assert user_client.post("/api/auth/ws-ticket").status_code == 200
    _assert_rate_limited(user_client.post("/api/auth/ws-ticket"))


def test_the_log_in_pages_are_throttled(rates, make_user):
    rates(login="1/min")
    user = make_user(password=PASSWORD)
    for path in ("/accounts/login/", "/admin/login/"):
        cache.delete_pattern("throttle:*")
        client = Client(REMOTE_ADDR="198.51.100.10")
        assert client.get(path).status_code == 200
        form = {"username": user.username, "password": "nope"}
        assert client.post(path, form).status_code == 200  # the form again, with an error
        res = client.post(path, form)
        assert res.status_code == 429, path
        assert int(res["Retry-After"]) >= 1


def test_repeated_failed_log_ins_lock_the_account_out_from_that_address(settings, make_user):
    settings.AXES_FAILURE_LIMIT = 3
    user = make_user(password=PASSWORD)
    client = APIClient(REMOTE_ADDR="198.51.100.11")
    for _ in range(3):
        res = client.post(
            "/api/auth/token", {"username": user.username, "password": "nope"}, format="json"
        )
        assert res.status_code in (401, 429)
    right = {"username": user.username, "password": PASSWORD}
    res = client.post("/api/auth/token", right, format="json")
    _assert_rate_limited(res)  # the right password too, during the cool-off
    assert res.json()["retry_after"] == int(settings.AXES_COOLOFF_TIME.total_seconds())
    _assert_rate_limited(client.post("/api/auth/session", right, format="json"))
    page = Client(REMOTE_ADDR="198.51.100.11").post(
        "/accounts/login/", {"username": user.username, "password": PASSWORD}
    )
    assert page.status_code == 429
    assert "Too many failed log-ins" in page.content.decode()
    # The account is not locked for its owner elsewhere: per account and address.
    elsewhere = APIClient(REMOTE_ADDR="198.51.100.12")
    assert elsewhere.post("/api/auth/token", right, format="json").status_code == 200


def test_with_the_cache_away_throttles_fail_open_and_the_lock_out_holds(settings, rates, make_user):
    """docs/security.md: the cache is disposable, the lock-out's counts are in PostgreSQL."""
    rates(profile_read="1/min")
    settings.AXES_FAILURE_LIMIT = 2
    default = settings.CACHES["default"]
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.CACHES = {"default": {**default, "LOCATION": dead}}
    target, reader = make_user(), make_user(password=PASSWORD)
    client = api_as(reader)
    for _ in range(3):
        assert client.get(f"/api/users/{target.pk}/profile").status_code == 200
    api = APIClient(REMOTE_ADDR="198.51.100.13")
    wrong = {"username": reader.username, "password": "nope"}
    for _ in range(2):
        api.post("/api/auth/token", wrong, format="json")
    res = api.post("/api/auth/token", {**wrong, "password": PASSWORD}, format="json")
    _assert_rate_limited(res)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_server_stops_profile_enumeration_and_locks_out_guessing(servers, make_user):
    """The issue's enumeration (GET /api/users/1..300/profile) and password guessing against
    a server process (ASGI: django-axes' async middleware path)."""
    (server,) = servers(1, THROTTLE_PROFILE_READ="10/min", AXES_FAILURE_LIMIT="2")
    reader = make_user()
    token = (
        APIClient()
        .post("/api/auth/token", {"username": reader.username, "password": PASSWORD}, format="json")
        .json()["token"]
    )
    statuses = []
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for user_id in range(1, 31):
            res = http.get(
                f"/api/users/{user_id}/profile", headers={"Authorization": f"Token {token}"}
            )
            statuses.append(res.status_code)
        assert res.json()["code"] == "rate_limited"
        assert int(res.headers["Retry-After"]) >= 1
        assert all(s in (200, 404) for s in statuses[:10]), statuses
        assert statuses[10:] == [429] * 20
        wrong = {"username": reader.username, "password": "nope"}
        assert http.post("/api/auth/token", json=wrong).status_code == 401
        res = http.post("/api/auth/token", json=wrong)
        assert res.status_code == 429
        res = http.post("/api/auth/token", json={**wrong, "password": PASSWORD})
        assert res.status_code == 429, res.text
        assert res.json()["code"] == "rate_limited"
        assert int(res.headers["Retry-After"]) == res.json()["retry_after"] >= 1
