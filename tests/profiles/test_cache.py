"""The public profile is cached (cache-aside) and a change invalidates it."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from profiles.selectors import interest_search_public, profile_public_get
from profiles.services import profile_update
from tests.conftest import api_as

pytestmark = pytest.mark.django_db(transaction=True)


def test_public_profile_is_read_from_the_cache(make_user):
    user = make_user(display_name="Ann")
    first = profile_public_get(user_id=user.pk)
    with CaptureQueriesContext(connection) as queries:
        again = profile_public_get(user_id=user.pk)
    assert again == first
    assert len(queries) == 0


def test_a_profile_change_invalidates_its_cache_entry(make_user):
    user, reader = make_user(display_name="Ann", interests=["chess"]), make_user()
    client = api_as(reader)
    url = f"/api/users/{user.pk}/profile"
    assert client.get(url).json()["display_name"] == "Ann"
    assert cache.get(profile_public_get.key(user_id=user.pk)) is not None
    profile_update(user=user, display_name="Annie", interests=["chess", "go"])
    assert cache.get(profile_public_get.key(user_id=user.pk)) is None
    body = client.get(url).json()
    assert body["display_name"] == "Annie"
    assert body["interests"] == ["chess", "go"]


def test_an_update_through_the_api_is_visible_to_others_at_once(make_user):
    user, reader = make_user(display_name="Ann"), make_user()
    url = f"/api/users/{user.pk}/profile"
    assert api_as(reader).get(url).json()["display_name"] == "Ann"
    assert (
        api_as(user).patch("/api/profile", {"region": "europe"}, format="json").status_code == 200
    )
    assert api_as(reader).get(url).json()["region"] == "europe"


def test_unknown_users_are_404_and_not_cached(make_user):
    reader = make_user()
    res = api_as(reader).get("/api/users/999999999/profile")
    assert res.status_code == 404
    assert cache.get(profile_public_get.key(user_id=999999999)) is None


def test_interest_search_is_cached(make_user):
    make_user(interests=["chess"])
    first = interest_search_public(prefix="ch")
    assert [r["slug"] for r in first] == ["chess"]
    make_user(interests=["cheese"])  # popularity and new rows may lag by TTLS["INTEREST_LIST"]
    with CaptureQueriesContext(connection) as queries:
        assert interest_search_public(prefix="ch") == first
    assert len(queries) == 0
