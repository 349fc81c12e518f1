"""The runnable example of docs/client.md works against a real server."""

import pytest
from playwright.sync_api import expect

from conversations.services import conversation_direct_get_or_create
from tests.conftest import accept_all
from tests.web.conftest import in_thread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_docs_client_example_connects_pings_and_sends(servers, people, make_user):
    (server,) = servers(1)
    ann, bob = make_user("ann"), make_user("bob")
    conversation, _ = in_thread(
        conversation_direct_get_or_create, user_id=ann.pk, other_user_id=bob.pk
    )
    in_thread(accept_all, conversation)
    page = people(ann, server, "/").page
    page.goto(server.url + "/static/examples/client.html")
    expect(page.locator("#state")).to_have_text("open")
    log = page.locator("#log")
    expect(log).to_contain_text(f"connected as user {ann.pk}")
    expect(log).to_contain_text("ping answered at")
    expect(page.locator("#cid")).to_have_value(str(conversation.pk))
    page.locator("#body").fill("<b>from the example</b>")
    page.get_by_role("button", name="Send").click()
    expect(log).to_contain_text("stored as seq 1 (client_id")
    expect(log).to_contain_text(f"#{conversation.pk} seq 1 from {ann.pk}: <b>from the example</b>")
