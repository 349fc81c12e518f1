"""notifications.services and selectors against the real PostgreSQL and Redis: the claim of
one absence under racing workers, who counts as away, the digest's content."""

import datetime
import threading

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from conversations.models import Membership
from conversations.services import conversation_direct_get_or_create, message_send
from notifications import delivery, selectors, services
from notifications.models import Absence, NotificationSettings
from presence.services import presence_leave, presence_touch
from profiles.models import Profile


def _setup(make_user, settings, *, away_seconds: float = 30.0):
    settings.LIMITS = {**settings.LIMITS, "NOTIFY_AWAY_SECONDS": 1.0}
    ann, bob = make_user(), make_user()
    bob.email = f"{bob.username}@example.test"
    bob.save(update_fields=["email"])
    conv, _ = conversation_direct_get_or_create(user_id=ann.pk, other_user_id=bob.pk)
    Membership.objects.filter(conversation=conv).update(state=Membership.State.ACCEPTED)
    at = timezone.now() - datetime.timedelta(seconds=away_seconds)
    Profile.objects.update_or_create(user=bob, defaults={"last_seen": at})
    return ann, bob, conv


@pytest.mark.django_db(transaction=True)
def test_racing_workers_tell_an_absence_once(make_user, settings):
    ann, bob, conv = _setup(make_user, settings)
    message_send(sender_id=ann.pk, conversation_id=conv.pk, body="hi", client_id="1")
    ((uid, since),) = [row for row in selectors.away_with_news() if row[0] == bob.pk]
    barrier = threading.Barrier(6)
    results = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(delivery.absence_notify(user_id=uid, away_since=since))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([r for r in results if r is not None]) == 1
    assert Absence.objects.filter(user=bob).count() == 1
    assert [m.to for m in mail.outbox] == [[bob.email]]
    assert not [row for row in selectors.away_with_news() if row[0] == bob.pk]


@pytest.mark.django_db
def test_who_is_away_with_news(make_user, settings):
    ann, bob, conv = _setup(make_user, settings)
    assert bob.pk not in dict(selectors.away_with_news())  # nothing unread
    message_send(sender_id=bob.pk, conversation_id=conv.pk, body="mine", client_id="0")
    assert bob.pk not in dict(selectors.away_with_news())  # their own message is no news
    message_send(sender_id=ann.pk, conversation_id=conv.pk, body="hi", client_id="1")
    assert bob.pk in dict(selectors.away_with_news())
    presence_touch(user_id=bob.pk, conn_id="tab")
    try:
        assert bob.pk not in dict(selectors.away_with_news())  # online now
    finally:
        presence_leave(user_id=bob.pk, conn_id="tab")


@pytest.mark.django_db
def test_not_away_long_enough_and_news_from_before_leaving_do_not_count(make_user, settings):
    ann, bob, conv = _setup(make_user, settings)
    message_send(sender_id=ann.pk, conversation_id=conv.pk, body="old", client_id="1")
    # bob left after that message came (he saw it arrive, unread): no news.
    Profile.objects.filter(user=bob).update(last_seen=timezone.now())
    assert bob.pk not in dict(selectors.away_with_news())
    message_send(sender_id=ann.pk, conversation_id=conv.pk, body="new", client_id="2")
    assert bob.pk not in dict(selectors.away_with_news())  # away for less than 1 s
    later = timezone.now() + datetime.timedelta(seconds=5)
    assert bob.pk in dict(selectors.away_with_news(now=later))


@pytest.mark.django_db
def test_the_digest_counts_unread_and_shows_first_lines_of_what_came_while_away(
    make_user, settings
):
    settings.LIMITS = {**settings.LIMITS, "NOTIFY_DIGEST_LINES": 2, "NOTIFY_DIGEST_LINE_CHARS": 10}
    ann, bob, conv = _setup(make_user, settings)
    for i, body in enumerate(["\n  first line here, long\nsecond", "two", "three"]):
        message_send(sender_id=ann.pk, conversation_id=conv.pk, body=body, client_id=str(i))
    since = Profile.objects.get(user=bob).last_seen
    digest = selectors.digest_get(user_id=bob.pk, since=since)
    (item,) = digest.conversations
    assert item.unread == 3 and digest.unread == 3
    assert item.title == ann.username
    assert item.lines == [(ann.username, "first lin…"), (ann.username, "two")]
    payload = delivery.push_payload(digest=digest)
    assert payload["title"] == ann.username and payload["url"] == f"/c/{conv.pk}"


@pytest.mark.django_db
def test_email_off_push_on_without_devices_claims_but_sends_nothing(make_user, settings):
    ann, bob, conv = _setup(make_user, settings)
    NotificationSettings.objects.create(user=bob, email=False, push=True)
    message_send(sender_id=ann.pk, conversation_id=conv.pk, body="hi", client_id="1")
    since = Profile.objects.get(user=bob).last_seen
    absence = delivery.absence_notify(user_id=bob.pk, away_since=since)
    assert absence is not None and not absence.emailed and absence.pushed == 0
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_stale_away_since_is_not_notified(make_user, settings):
    ann, bob, conv = _setup(make_user, settings)
    message_send(sender_id=ann.pk, conversation_id=conv.pk, body="hi", client_id="1")
    stale = Profile.objects.get(user=bob).last_seen - datetime.timedelta(hours=1)
    assert delivery.absence_notify(user_id=bob.pk, away_since=stale) is None
    assert mail.outbox == []


@pytest.mark.django_db
def test_unsubscribe_tokens_are_signed(make_user):
    user = make_user()
    token = services.unsubscribe_token(user_id=user.pk)
    assert services.unsubscribe_user_id(token=token) == user.pk
    with pytest.raises(services.Invalid):
        services.unsubscribe_user_id(token=token[:-2] + "xx")
