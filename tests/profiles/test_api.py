"""Profiles and interests over REST."""

import pytest

from profiles.models import Interest, Profile

pytestmark = pytest.mark.django_db


def test_read_and_update_my_profile(api):
    res = api.patch(
        "/api/profile",
        {
            "display_name": " Ann ",
            "language": "PT",
            "region": "europe",
            "interests": ["Rock  Climbing", "rock climbing", " Jazz "],
        },
        format="json",
    )
    assert res.status_code == 200, res.json()
    body = api.get("/api/profile").json()
    assert body["display_name"] == "Ann"
    assert body["language"] == "pt"
    assert body["region"] == "europe"
    assert sorted(body["interests"]) == ["jazz", "rock climbing"]
    assert set(Interest.objects.values_list("slug", flat=True)) == {"jazz", "rock-climbing"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"language": "xx"}, "language"),
        ({"language": "english"}, "language"),
        ({"region": "mars"}, "region"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "x" * 61}, "display_name"),
        ({"interests": [f"topic {i}" for i in range(21)]}, "interests"),
        ({"interests": ["ok", ""]}, "interests"),
        ({"interests": ["   "]}, "interests"),
        ({"interests": ["x" * 500]}, "interests"),
        ({"interests": ["\ufdfa" * 3]}, "interests"),  # a short name whose slug is long
        ({"interests": ["a\x00b"]}, "interests"),
        ({"display_name": "a\x00b"}, "display_name"),
        ({"interests": "music"}, "interests"),
        ({"interests": [5]}, "interests"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_profile_updates_are_refused_whole(api, body, field):
    before = api.get("/api/profile").json()
    res = api.patch("/api/profile", {"display_name": "Changed", **body}, format="json")
    assert res.status_code == 400, res.json()
    assert res.json()["code"] == "invalid"
    assert field in res.json()["fields"]
    assert api.get("/api/profile").json() == before
    assert not Interest.objects.exists()


def test_twenty_interests_are_allowed_and_duplicates_count_once(api):
    interests = [f"topic {i}" for i in range(20)] + ["TOPIC 0"]
    res = api.patch("/api/profile", {"interests": interests}, format="json")
    assert res.status_code == 200
    assert len(res.json()["interests"]) == 20


def test_public_profile_of_another_user(api, make_user):
    other = make_user("zoe", display_name="Zoe", interests=["Chess"])
    res = api.get(f"/api/users/{other.pk}/profile")
    assert res.status_code == 200
    assert res.json()["display_name"] == "Zoe"
    assert res.json()["interests"] == ["chess"]
    assert "email" not in res.json()


def test_unknown_user_is_a_json_404(api):
    res = api.get("/api/users/987654/profile")
    assert res.status_code == 404
    assert res.json()["code"] == "not_found"


def test_interest_prefix_search_orders_by_popularity(api, make_user):
    make_user(interests=["music", "museums"])
    make_user(interests=["music"])
    make_user(interests=["chess"])
    res = api.get("/api/interests", {"q": " MU"})
    assert [i["slug"] for i in res.json()] == ["music", "museums"]
    assert res.json()[0]["popularity"] == 2
    assert len(api.get("/api/interests").json()) == 3
    assert api.get("/api/interests", {"q": "x" * 500}).json() == []


def test_profile_is_created_for_users_made_elsewhere(api):
    Profile.objects.filter(user=api.user).delete()
    assert api.get("/api/profile").status_code == 200
