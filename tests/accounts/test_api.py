"""Sign-up, tokens, session login and WebSocket tickets over REST."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from profiles.models import Profile

pytestmark = pytest.mark.django_db
User = get_user_model()
GOOD = "plum-Orchard-7-lantern"


def signup(client, **body):
    return client.post("/api/auth/signup", body, format="json")


def test_signup_creates_user_profile_and_token():
    res = signup(APIClient(), username="ann", password=GOOD)
    assert res.status_code == 201, res.json()
    body = res.json()
    user = User.objects.get(username="ann")
    assert body == {
        "user_id": user.pk,
        "username": "ann",
        "token": Token.objects.get(user=user).key,
    }
    assert Profile.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "ann", "password": "password"}, "password"),  # common
        ({"username": "ann", "password": "12345678901"}, "password"),  # numeric
        ({"username": "ann", "password": "ann-ann"}, "password"),  # too short
        ({"username": "bad name!", "password": GOOD}, "username"),
        ({"username": "", "password": GOOD}, "username"),
        ({"password": GOOD}, "username"),
        ({"username": "ann"}, "password"),
        ({"username": "ann", "password": GOOD, "email": "nope"}, "email"),
    ],
)
def test_signup_rejects_bad_input_by_field(body, field):
    res = signup(APIClient(), **body)
    assert res.status_code == 400
    assert res.json()["code"] == "invalid"
    assert field in res.json()["fields"]
    assert not User.objects.exists()


def test_signup_refuses_a_look_alike_of_an_existing_name():
    assert signup(APIClient(), username="auditstaff", password=GOOD).status_code == 201
    for lookalike in ("\u0430uditstaff", "auditst\u0430ff", "\uff41uditstaff", "AuditStaff"):
        res = signup(APIClient(), username=lookalike, password=GOOD)
        assert res.status_code == 400, lookalike
        assert set(res.json()["fields"]) == {"username"}
    # Not only look-alikes: usernames are ASCII (the display name takes any script).
    assert signup(APIClient(), username="ёлка", password=GOOD).status_code == 400
    assert signup(APIClient(), username="ann.b-c_d+e@f", password=GOOD).status_code == 201
    assert User.objects.filter(username__icontains="uditst").count() == 1


def test_signup_rejects_taken_username_case_insensitively():
    assert signup(APIClient(), username="Ann", password=GOOD).status_code == 201
    res = signup(APIClient(), username="ann", password=GOOD)
    assert res.status_code == 400
    assert res.json()["fields"] == {"username": "That username is taken."}
    assert User.objects.count() == 1


def test_malformed_json_is_a_400_with_a_json_body():
    res = APIClient().post("/api/auth/signup", "{nope", content_type="application/json")
    assert res.status_code == 400
    assert res.json()["code"] == "parse_error"
    res = APIClient().post("/api/auth/signup", "[1]", content_type="application/json")
    assert res.status_code == 400


def test_token_obtain_use_and_revoke(make_user):
    make_user("bob", password=GOOD)
    client = APIClient()
    assert client.post("/api/auth/token", {"username": "bob", "password": "x"}).status_code == 401
    token = client.post("/api/auth/token", {"username": "bob", "password": GOOD}).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/profile").status_code == 200
    assert client.delete("/api/auth/token").status_code == 204
    assert client.get("/api/profile").status_code == 401


def test_api_needs_authentication():
    res = APIClient().get("/api/profile")
    assert res.status_code == 401
    assert res.json()["code"] == "not_authenticated"


def test_session_login_and_logout(make_user):
    make_user("cat", password=GOOD)
    client = APIClient(enforce_csrf_checks=True)
    assert client.get("/api/auth/session").json() == {"authenticated": False, "user_id": None}
    # Login CSRF: a log-in posted without the token (say, from another site) is refused.
    res = client.post("/api/auth/session", {"username": "cat", "password": GOOD})
    assert res.status_code == 403
    csrf = client.cookies["csrftoken"].value
    res = client.post(
        "/api/auth/session", {"username": "cat", "password": GOOD}, HTTP_X_CSRFTOKEN=csrf
    )
    assert res.status_code == 204
    assert client.get("/api/auth/session").json()["authenticated"] is True
    # A session-authenticated write without the CSRF token is refused.
    assert client.delete("/api/auth/session").status_code == 403


def test_ws_ticket_is_issued_to_signed_in_users(api):
    res = api.post("/api/auth/ws-ticket")
    assert res.status_code == 200
    assert res.json()["expires_in"] == 30
    assert len(res.json()["ticket"]) > 30
    assert APIClient().post("/api/auth/ws-ticket").status_code == 401
