"""Notifications end to end with a real worker: the scan finds who is away with news, the
digest lands in the file backend once per absence, pushes reach a local push service."""

import datetime
import time

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from conversations.models import Membership
from conversations.services import conversation_direct_get_or_create, message_send
from notifications.models import Absence, Mute, NotificationSettings, PushSubscription
from notifications.tasks import notifications_scan
from presence.services import presence_leave, presence_sweep, presence_touch
from profiles.models import Profile

from .conftest import Browser, mails, wait_for, worker_drained

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _away(user, seconds: float = 30.0) -> None:
    """The user's last live connection was ``seconds`` ago."""
    at = timezone.now() - datetime.timedelta(seconds=seconds)
    Profile.objects.update_or_create(user=user, defaults={"last_seen": at})


def _pair(make_user, name: str):
    sender = make_user(f"{name}_from")
    away = make_user(f"{name}_to")
    away.email = f"{away.username}@example.test"
    away.save(update_fields=["email"])
    conv, _ = conversation_direct_get_or_create(user_id=sender.pk, other_user_id=away.pk)
    Membership.objects.filter(conversation=conv).update(state=Membership.State.ACCEPTED)
    return sender, away, conv


def _scan(worker) -> None:
    """Run one scan on the worker and wait until it and the work it queued are done."""
    time.sleep(0.85)  # the previous scan's period claim (0.8 x 1 s) must have lapsed
    notifications_scan.delay()
    wait_for(lambda: worker_drained(worker))


def test_the_digest_lands_once_per_absence_and_again_after_coming_back(worker, mail_dir, make_user):
    ann, bob, conv = _pair(make_user, "digest")
    _away(bob)
    message_send(sender_id=ann.pk, conversation_id=conv.pk, body="lunch?\nat noon", client_id="1")
    message_send(sender_id=ann.pk, conversation_id=conv.pk, body="or later", client_id="2")
    _scan(worker)
    (digest,) = wait_for(lambda: mails(mail_dir, to=bob.email))
    assert digest["Subject"] == "2 unread messages on Switchboard"
    text = digest.get_body(("plain",)).get_content()
    html = digest.get_body(("html",)).get_content()
    for body in (text, html):
        assert "lunch?" in body and "at noon" not in body  # first lines only
        assert "or later" in body
        assert f"http://switchboard.test/c/{conv.pk}" in body
    unsubscribe = str(digest["List-Unsubscribe"]).strip().strip("<>")
    assert unsubscribe.startswith("http://switchboard.test/notifications/unsubscribe/")
    assert unsubscribe in text and unsubscribe in html
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # Still away, more news, more scans: nothing more this absence.
    message_send(sender_id=ann.pk, conversation_id=conv.pk, body="hello?", client_id="3")
    _scan(worker)
    _scan(worker)
    assert len(mails(mail_dir, to=bob.email)) == 1
    assert Absence.objects.filter(user=bob).count() == 1

    # Back (a live connection), gone again, news: a second digest.
    presence_touch(user_id=bob.pk, conn_id="bob-tab")
    _scan(worker)  # online: not a candidate
    assert len(mails(mail_dir, to=bob.email)) == 1
    presence_leave(user_id=bob.pk, conn_id="bob-tab")
    presence_sweep(now=time.time() + 60)  # past the offline grace: bob is announced offline
    left = Profile.objects.get(user=bob).last_seen
    assert left is not None and left > Absence.objects.get(user=bob).notified_at
    wait_for(lambda: timezone.now() - left > datetime.timedelta(seconds=1.2))
    message_send(sender_id=ann.pk, conversation_id=conv.pk, body="back?", client_id="4")
    _scan(worker)
    first, second = wait_for(
        lambda: mails(mail_dir, to=bob.email)[1:] and mails(mail_dir, to=bob.email)
    )
    text = second.get_body(("plain",)).get_content()
    assert "back?" in text and "lunch?" not in text  # only what came during this absence
    assert Absence.objects.filter(user=bob).count() == 2


def test_muted_conversations_and_the_none_setting_are_respected(worker, mail_dir, make_user):
    ann, carol, muted = _pair(make_user, "muted")
    Mute.objects.create(user=carol, conversation=muted)
    dan, dave, quiet = _pair(make_user, "none")
    NotificationSettings.objects.create(user=dave, email=False, push=False)
    eve, erin, loud = _pair(make_user, "email")
    for user in (carol, dave, erin):
        _away(user)
    message_send(sender_id=ann.pk, conversation_id=muted.pk, body="psst", client_id="1")
    message_send(sender_id=dan.pk, conversation_id=quiet.pk, body="psst", client_id="1")
    message_send(sender_id=eve.pk, conversation_id=loud.pk, body="psst", client_id="1")
    _scan(worker)
    wait_for(lambda: mails(mail_dir, to=erin.email))  # the scan ran and sent what it should
    assert mails(mail_dir, to=carol.email) == []
    assert mails(mail_dir, to=dave.email) == []
    assert not Absence.objects.filter(user__in=[carol, dave]).exists()


def test_a_push_reaches_the_push_service_and_decrypts_with_the_browser_keys(
    worker, push_service, mail_dir, make_user, vapid_settings
):
    ann, bob, conv = _pair(make_user, "push")
    NotificationSettings.objects.create(user=bob, email=False, push=True)
    browser = Browser()
    client = APIClient()
    client.force_authenticate(bob)
    endpoint = push_service.url(f"/push/{bob.pk}")
    reply = client.post(
        "/api/notifications/push/subscriptions", browser.subscription(endpoint), format="json"
    )
    assert reply.status_code == 201, reply.content
    public_key = client.get("/api/notifications/push/key").json()["public_key"]
    _away(bob)
    message_send(sender_id=ann.pk, conversation_id=conv.pk, body="ping from ann", client_id="1")
    _scan(worker)
    (push,) = wait_for(lambda: push_service.to(f"/push/{bob.pk}"))
    headers = {k.lower(): v for k, v in push["headers"].items()}
    assert headers["content-encoding"] == "aes128gcm"
    assert int(headers["ttl"]) > 0
    assert headers["authorization"].startswith("vapid t=")
    assert f"k={public_key}" in headers["authorization"]
    payload = browser.decrypt(push["body"])
    assert payload["body"] == f"{ann.username}: ping from ann"
    assert payload["url"] == f"/c/{conv.pk}"
    assert payload["unread"] == 1
    assert PushSubscription.objects.get(user=bob).last_success_at is not None
    assert mails(mail_dir, to=bob.email) == []  # email off
    assert Absence.objects.get(user=bob).pushed == 1


def test_a_410_from_the_push_service_removes_the_subscription(
    worker, push_service, make_user, vapid_settings
):
    ann, bob, conv = _pair(make_user, "gone")
    client = APIClient()
    client.force_authenticate(bob)
    gone = Browser().subscription(push_service.url(f"/gone/{bob.pk}"))
    kept = Browser().subscription(push_service.url(f"/push/{bob.pk}-kept"))
    for sub in (gone, kept):
        assert (
            client.post("/api/notifications/push/subscriptions", sub, format="json").status_code
            == 201
        )
    _away(bob)
    message_send(sender_id=ann.pk, conversation_id=conv.pk, body="anyone?", client_id="1")
    _scan(worker)
    wait_for(lambda: push_service.to(f"/gone/{bob.pk}"))
    wait_for(lambda: not PushSubscription.objects.filter(endpoint=gone["endpoint"]).exists())
    assert PushSubscription.objects.filter(endpoint=kept["endpoint"]).exists()
