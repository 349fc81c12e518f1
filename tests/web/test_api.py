"""GET /api/users?q=: people to start a conversation with."""

import pytest
from rest_framework.test import APIClient

from tests.conftest import api_as

pytestmark = pytest.mark.django_db


def test_finds_by_username_or_display_name_prefix_not_me(make_user):
    me = make_user("annabel", display_name="Ann")
    bob = make_user("bob", display_name="Annie B")
    make_user("carl", display_name="Carl")
    hidden = make_user("anna_old")
    hidden.is_active = False
    hidden.save()
    client = api_as(me)
    rows = client.get("/api/users", {"q": "ann"}).json()
    assert rows == [{"user_id": bob.pk, "username": "bob", "display_name": "Annie B"}]
    assert client.get("/api/users", {"q": "CAR"}).json()[0]["username"] == "carl"
    assert client.get("/api/users", {"q": "  "}).json() == []
    assert client.get("/api/users").json() == []


def test_results_are_bounded(make_user, settings):
    settings.LIMITS = {**settings.LIMITS, "USER_SEARCH_RESULTS": 3}
    me = make_user("me")
    for i in range(5):
        make_user(f"zed{i}")
    assert len(api_as(me).get("/api/users", {"q": "zed"}).json()) == 3


def test_a_nul_in_the_query_is_a_400_not_a_500(make_user):
    # PostgreSQL refuses NUL in a LIKE pattern: unchecked, this was a 500.
    response = api_as(make_user()).get("/api/users?q=%00")
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    response = api_as(make_user()).get("/api/users?q=a%00b")
    assert response.status_code == 400


def test_needs_a_signed_in_user():
    assert APIClient().get("/api/users", {"q": "a"}).status_code in (401, 403)
