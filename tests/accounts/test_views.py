"""Browser sign-up, log-in and log-out pages (Django sessions, CSRF-protected)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db


def test_signup_page_creates_account_and_logs_in():
    client = Client()
    assert client.get("/accounts/signup/").status_code == 200
    res = client.post(
        "/accounts/signup/", {"username": "dana", "password": "plum-Orchard-7-lantern"}
    )
    assert res.status_code == 302
    assert client.get("/api/auth/session").json()["authenticated"] is True


def test_signup_page_shows_errors_and_creates_nothing():
    res = Client().post("/accounts/signup/", {"username": "dana", "password": "123"})
    assert res.status_code == 200
    assert b"too short" in res.content
    assert not get_user_model().objects.exists()


def test_login_form_requires_csrf_token(make_user):
    make_user("erin", password="plum-Orchard-7-lantern")
    client = Client(enforce_csrf_checks=True)
    res = client.post(
        "/accounts/login/", {"username": "erin", "password": "plum-Orchard-7-lantern"}
    )
    assert res.status_code == 403
    client.get("/accounts/login/")
    res = client.post(
        "/accounts/login/",
        {
            "username": "erin",
            "password": "plum-Orchard-7-lantern",
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
        },
    )
    assert res.status_code == 302


def test_logout_ends_the_session(make_user):
    user = make_user()
    client = Client()
    client.force_login(user)
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/api/auth/session").json()["authenticated"] is False
