"""The Live page updates from pushes made by the scheduled task (beat -> worker -> page)."""

import pytest
from playwright.sync_api import expect

from conversations.services import conversation_direct_get_or_create, message_send
from ops.schedules import schedules_install
from tests.conftest import accept_all
from tests.web.conftest import in_thread, wait_for_js

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_live_page_updates_from_beat_driven_pushes(
    servers, people, make_user, celery_procs, settings
):
    settings.LIVE = {**settings.LIVE, "STATS_SECONDS": 1}
    in_thread(schedules_install)  # stats every second, as `make run` installs the schedules
    (server,) = servers(1)
    viewer = make_user("viewer", display_name="Viewer")
    ann, bob = make_user("ann"), make_user("bob")
    conversation, _ = in_thread(
        conversation_direct_get_or_create, user_id=ann.pk, other_user_id=bob.pk
    )
    in_thread(accept_all, conversation)
    for i in range(2):
        in_thread(
            message_send,
            sender_id=ann.pk,
            conversation_id=conversation.pk,
            body=f"m{i}",
            client_id=f"c{i}",
        )
    page = people(viewer, server, "/live/").page
    expect(page.locator("#live")).to_have_attribute("data-subscribed", "true")
    before = int(page.locator("#live").get_attribute("data-updates"))

    # Only now do the worker and beat start: whatever arrives next was pushed by them.
    celery_procs.worker(LIVE_STATS_SECONDS="1")
    celery_procs.beat(LIVE_STATS_SECONDS="1")
    wait_for_js(
        page,
        f"Number(document.getElementById('live').dataset.updates) >= {before + 2}",
        timeout=60_000,
    )
    expect(page.locator("#stat-messages")).to_have_text("2")
    assert int(page.locator("#stat-online").inner_text()) >= 1  # the viewer's own socket
    expect(page.locator("#stat-matches")).to_have_text("0")
    assert page.locator("#chart svg polyline").count() == 2
    points = page.locator("#chart svg polyline").first.get_attribute("points").split()
    assert len(points) >= 2
    expect(page.locator("#live-updated")).to_contain_text("Updated")
