"""The profile page's notification switches and the push permission prompt, in Chromium.

Headless Chromium has no push service (Chrome's is Google's FCM, not reachable and not
configured in Debian's build): ``PushManager.subscribe`` is refused ("Registration failed -
permission denied", while ``pushManager.permissionState`` says "granted"), so this test checks
what runs for real (permission on a click, the service worker at /sw.js with scope "/", the
UI's state, the switches saved, and the worker showing a push that DevTools'
``ServiceWorker.deliverPushMessage`` hands it as a push service would); tests/notifications
covers the delivery itself with a local push service.
"""

import json
import time

import pytest
from playwright.sync_api import expect

from notifications.models import NotificationSettings

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_the_button_asks_registers_the_worker_which_shows_a_push(servers, people, make_user):
    (server,) = servers(1)
    ann = make_user("ann")
    person = people(ann, server, "/profile/", permissions=["notifications"])
    page = person.page
    section = page.locator("#notifications")
    expect(section).to_have_attribute("data-state", "off")
    # Nothing is registered before the click: no prompt without a user gesture.
    assert page.evaluate("navigator.serviceWorker.getRegistration('/').then(Boolean)") is False

    page.get_by_role("button", name="Turn on browser notifications").click()
    expect(section).to_have_attribute("data-state", "no-push-service")
    scope = page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope + ' ' + !!r.active)")
    assert scope == f"{server.url}/ true"
    assert page.evaluate("Notification.permission") == "granted"
    expect(page.locator("#push-status")).to_contain_text("no push service")
    # Push itself is permitted; only the push service is missing (the docstring).
    push_permission = page.evaluate(
        "navigator.serviceWorker.ready"
        ".then((r) => r.pushManager.permissionState({userVisibleOnly: true}))"
    )
    assert push_permission == "granted"
    assert not NotificationSettings.objects.filter(user=ann).exists()  # nothing stored yet

    # The switches: both off is "none".
    page.get_by_label("By email").uncheck()
    page.get_by_label("In this browser").uncheck()
    expect(page.get_by_label("In this browser")).not_to_be_checked()
    page.wait_for_function(
        "fetch('/api/notifications/settings').then((r) => r.json())"
        ".then((s) => !s.email && !s.push)"
    )
    row = NotificationSettings.objects.get(user=ann)
    assert (row.email, row.push) == (False, False)
    assert person.dialogs == []

    # DevTools delivers a push to the worker as a push service would: it shows the payload.
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: registrations.extend(e["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    page.wait_for_function("navigator.serviceWorker.ready.then(Boolean)")
    deadline = time.monotonic() + 10
    while not registrations and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    (registration,) = [r for r in registrations if r["scopeURL"] == f"{server.url}/"][:1]
    payload = {"title": "bob", "body": "bob: lunch?", "url": "/c/7", "tag": "switchboard-unread"}
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": server.url,
            "registrationId": registration["registrationId"],
            "data": json.dumps(payload),
        },
    )
    shown = page.wait_for_function(
        "navigator.serviceWorker.ready.then((r) => r.getNotifications())"
        ".then((ns) => ns.length && ns.map((n) => [n.title, n.body, n.tag, n.data.url]))"
    ).json_value()
    assert shown == [["bob", "bob: lunch?", "switchboard-unread", "/c/7"]]
