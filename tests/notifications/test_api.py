"""The REST endpoints of notifications: settings, mutes, the VAPID key, subscriptions; bad
input gets a 400 with a clear message, never a 500."""

import pytest

from conversations.services import conversation_direct_get_or_create
from notifications.models import PushSubscription

from .conftest import Browser

pytestmark = pytest.mark.django_db
SUBS = "/api/notifications/push/subscriptions"


def test_settings_default_on_and_change(api):
    assert api.get("/api/notifications/settings").json() == {
        "email": True, "push": True, "muted": [],
    }  # fmt: skip
    reply = api.patch("/api/notifications/settings", {"email": False}, format="json")
    assert reply.status_code == 200 and reply.json()["email"] is False
    both_off = api.patch("/api/notifications/settings", {"push": False}, format="json").json()
    assert both_off == {"email": False, "push": False, "muted": []}


@pytest.mark.parametrize("body", [{"email": "maybe"}, {"push": [1]}, [1, 2], "x"])
def test_bad_settings_are_a_400(api, body):
    reply = api.patch("/api/notifications/settings", body, format="json")
    assert reply.status_code == 400
    assert reply.json()["code"] in ("invalid", "parse_error")


def test_mute_and_unmute_a_conversation_of_mine_only(api, make_user):
    other = make_user()
    conv, _ = conversation_direct_get_or_create(user_id=api.user.pk, other_user_id=other.pk)
    assert api.put(f"/api/notifications/mutes/{conv.pk}").json()["muted"] == [conv.pk]
    assert api.put(f"/api/notifications/mutes/{conv.pk}").json()["muted"] == [conv.pk]
    assert api.delete(f"/api/notifications/mutes/{conv.pk}").json()["muted"] == []
    stranger, _ = conversation_direct_get_or_create(user_id=other.pk, other_user_id=make_user().pk)
    assert api.put(f"/api/notifications/mutes/{stranger.pk}").status_code == 404
    assert api.put("/api/notifications/mutes/999999999").status_code == 404


def test_the_public_key_is_the_configured_pair(api, vapid_settings):
    key = api.get("/api/notifications/push/key").json()["public_key"]
    assert len(key) == 87  # base64url of a 65-byte uncompressed P-256 point


def test_no_key_is_a_503_not_a_500(api, settings):
    from notifications import vapid

    settings.VAPID_PRIVATE_KEY, settings.DEBUG = "", False
    vapid.vapid.cache_clear()
    try:
        reply = api.get("/api/notifications/push/key")
    finally:
        vapid.vapid.cache_clear()
    assert reply.status_code == 503 and "VAPID_PRIVATE_KEY" in reply.json()["message"]


def test_subscribe_stores_one_row_per_device_and_unsubscribe_forgets_it(api, settings):
    settings.PUSH_ALLOW_LOCAL_ENDPOINTS = False
    sub = Browser().subscription("https://push.example.com/send/abc")
    reply = api.post(SUBS, sub, format="json", HTTP_USER_AGENT="Firefox/1")
    assert reply.status_code == 201
    assert PushSubscription.objects.get(user=api.user).user_agent == "Firefox/1"
    new_keys = Browser().subscription("")["keys"]
    again = api.post(SUBS, {**sub, "keys": new_keys}, format="json", HTTP_USER_AGENT="Firefox/2")
    assert again.json()["id"] == reply.json()["id"]  # the same device re-subscribed
    row = PushSubscription.objects.get(user=api.user)
    assert (row.user_agent, row.p256dh, row.auth) == (
        "Firefox/2",
        new_keys["p256dh"],
        new_keys["auth"],
    )
    gone = api.post(
        "/api/notifications/push/unsubscribe", {"endpoint": sub["endpoint"]}, format="json"
    )
    assert gone.status_code == 204
    assert (
        api.post(
            "/api/notifications/push/unsubscribe", {"endpoint": sub["endpoint"]}, format="json"
        ).status_code
        == 404
    )


def test_only_the_newest_subscriptions_per_user_are_kept(api, settings):
    settings.LIMITS = {**settings.LIMITS, "PUSH_SUBSCRIPTIONS_PER_USER": 2}
    settings.PUSH_ALLOW_LOCAL_ENDPOINTS = False
    for i in range(3):
        sub = Browser().subscription(f"https://push.example.com/send/{i}")
        assert api.post(SUBS, sub, format="json").status_code == 201
    kept = PushSubscription.objects.filter(user=api.user).values_list("endpoint", flat=True)
    assert sorted(kept) == ["https://push.example.com/send/1", "https://push.example.com/send/2"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "ftp://push.example.com/x"}, "endpoint"),
        ({"endpoint": "http://push.example.com/x"}, "endpoint"),
        ({"endpoint": "https://127.0.0.1/x"}, "endpoint"),
        ({"endpoint": "https://localhost/x"}, "endpoint"),
        ({"endpoint": "https://push.example.com/" + "x" * 2000}, "endpoint"),
        ({"keys": {"p256dh": "AAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, "keys.p256dh"),
        ({"keys": {"p256dh": Browser().p256dh, "auth": "***"}}, "keys.auth"),
        ({"keys": {"p256dh": Browser().p256dh}}, "keys"),
        ({"keys": "nope"}, "keys"),
    ],
)
def test_bad_subscriptions_are_a_400_naming_the_field(api, settings, change, field):
    settings.PUSH_ALLOW_LOCAL_ENDPOINTS = False
    body = {**Browser().subscription("https://push.example.com/send/abc"), **change}
    reply = api.post(SUBS, body, format="json")
    assert reply.status_code == 400, reply.content
    error = reply.json()
    assert error["code"] == "invalid"
    # The one error body of the API (core/api.py): the problem of each field under "fields".
    assert set(error) <= {"code", "message", "fields"}
    first, _, sub = field.partition(".")
    assert first in error["fields"], error
    assert not sub or sub in error["fields"][first], error
    assert not PushSubscription.objects.exists()


def test_anonymous_is_refused(client):
    assert client.get("/api/notifications/settings").status_code in (401, 403)
