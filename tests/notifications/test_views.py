"""The service worker at the site root and the one-click unsubscribe (RFC 8058)."""

import pytest

from notifications import services
from notifications.models import NotificationSettings


def test_the_service_worker_is_served_from_the_root_for_the_whole_site(client):
    reply = client.get("/sw.js")
    assert reply.status_code == 200
    assert reply["Content-Type"].startswith("text/javascript")
    assert reply["Service-Worker-Allowed"] == "/"
    body = reply.content.decode()
    assert 'addEventListener("push"' in body and 'addEventListener("notificationclick"' in body


@pytest.mark.django_db
def test_get_shows_a_button_and_changes_nothing_post_unsubscribes(client, make_user):
    user = make_user()
    url = f"/notifications/unsubscribe/{services.unsubscribe_token(user_id=user.pk)}"
    page = client.get(url)
    assert page.status_code == 200 and b'id="unsubscribe-confirm"' in page.content
    assert not NotificationSettings.objects.filter(user=user).exists()
    done = client.post(url)
    assert done.status_code == 200 and b'id="unsubscribed"' in done.content
    assert NotificationSettings.objects.get(user=user).email is False


@pytest.mark.django_db
def test_rfc_8058_one_click_post_needs_no_cookie_or_csrf_token(make_user):
    from django.test import Client

    user = make_user()
    url = f"/notifications/unsubscribe/{services.unsubscribe_token(user_id=user.pk)}"
    reply = Client(enforce_csrf_checks=True).post(
        url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert reply.status_code == 200
    assert NotificationSettings.objects.get(user=user).email is False


@pytest.mark.django_db
def test_a_forged_token_is_a_400_page(client, make_user):
    user = make_user()
    forged = services.unsubscribe_token(user_id=user.pk)[:-3] + "abc"
    reply = client.post(f"/notifications/unsubscribe/{forged}")
    assert reply.status_code == 400 and b"not valid" in reply.content
    assert not NotificationSettings.objects.filter(user=user).exists()
