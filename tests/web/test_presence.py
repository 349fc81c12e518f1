"""Presence in the browser: the dot follows the other person's page, through beat's sweep."""

import pytest
from playwright.sync_api import expect

from conversations.services import conversation_direct_get_or_create
from ops.schedules import schedules_install
from tests.conftest import accept_all
from tests.web.conftest import in_thread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_presence_dot_changes_when_the_other_closes_the_page(
    servers, people, make_user, celery_procs
):
    in_thread(schedules_install)  # the presence sweep, as `make run` installs it
    (server,) = servers(1, LIMIT_PRESENCE_OFFLINE_GRACE_SECONDS="1")
    ann = make_user("ann", display_name="Ann")
    bob = make_user("bob", display_name="Bob")
    conversation, _ = in_thread(
        conversation_direct_get_or_create, user_id=ann.pk, other_user_id=bob.pk
    )
    in_thread(accept_all, conversation)
    a = people(ann, server, "/").page
    dot = a.locator(f'#conv-list li[data-conversation-id="{conversation.pk}"] .presence-dot')
    expect(dot).to_have_attribute("data-online", "offline")

    b = people(bob, server, f"/c/{conversation.pk}").page
    expect(dot).to_have_attribute("data-online", "online")
    expect(dot).to_have_attribute("aria-label", "online")

    # Bob closes his page; the worker's sweep (scheduled by beat) takes him offline.
    celery_procs.worker()
    celery_procs.beat()
    b.close()
    expect(dot).to_have_attribute("data-online", "offline", timeout=60_000)
    a.locator(f'#conv-list li[data-conversation-id="{conversation.pk}"] a').click()
    expect(a.locator("#thread-sub")).to_have_text("offline")
