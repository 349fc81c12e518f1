"""Message search in the browser: the search box, the results with their highlighted
snippets, and a result opening its conversation at an old message not loaded yet."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conversations.models import Conversation, Message
from conversations.services import conversation_direct_get_or_create
from tests.conftest import accept_all
from tests.web.conftest import assert_accessible, in_thread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

HISTORY = 300
NEEDLE_SEQ = 5


def _direct_with_history(a, b) -> int:
    conversation, _ = in_thread(conversation_direct_get_or_create, user_id=a.pk, other_user_id=b.pk)
    in_thread(accept_all, conversation)
    now = timezone.now()
    Message.objects.bulk_create(
        [
            Message(
                conversation=conversation,
                seq=seq,
                sender_id=(a if seq % 2 else b).pk,
                body=(
                    'The elephants were running <img src=x onerror="window.pwned=1">'
                    if seq == NEEDLE_SEQ
                    else f"filler line {seq}"
                ),
                client_id=f"seed-{seq}",
                language="en",
            )
            for seq in range(1, HISTORY + 1)
        ]
    )
    Conversation.objects.filter(pk=conversation.pk).update(last_seq=HISTORY, last_message_at=now)
    return conversation.pk


def test_the_search_box_finds_an_old_message_and_jumps_to_it(servers, people, make_user):
    (server,) = servers(1)
    ann = make_user("ann", display_name="Ann", language="en")
    bob = make_user("bob", display_name="Bob", language="en")
    cid = _direct_with_history(ann, bob)
    a = people(ann, server, "/").page
    expect(a.locator("#conn")).to_have_attribute("data-state", "open")
    expect(a.locator("#conv-list li .conv-title")).to_have_text(["Bob"])

    search = a.get_by_role("searchbox", name="Search messages")
    search.fill("run")  # stemmed: the English "running"
    search.press("Enter")
    results = a.locator("#search-list .search-result")
    expect(results).to_have_count(1)
    expect(a.locator("#search-status")).to_have_text("1 message found for “run”.")
    expect(results.first.locator("mark")).to_have_text(["running"])
    expect(results.first.locator(".search-where")).to_have_text("Bob")
    expect(results.first.locator(".search-snippet")).to_contain_text("elephants")
    expect(a.locator("#conv-list")).to_be_hidden()
    assert_accessible(a, "search results")

    results.first.click()
    expect(a).to_have_url(f"{server.url}/c/{cid}")
    found = a.locator(f'#message-list li[data-seq="{NEEDLE_SEQ}"]')
    expect(found).to_have_class(re.compile(r"\bfound\b"))
    expect(found).to_be_focused()
    expect(found).to_be_in_viewport()
    expect(found.locator(".msg-body")).to_contain_text('<img src=x onerror="window.pwned=1">')
    # Every message from it to the newest is shown, with no gap.
    seqs = a.locator("#message-list li[data-seq]").evaluate_all(
        "nodes => nodes.map(n => Number(n.dataset.seq))"
    )
    assert seqs[0] <= NEEDLE_SEQ and seqs == list(range(seqs[0], HISTORY + 1))
    assert a.evaluate("window.pwned") is None

    # A query with nothing to search for says so; Escape goes back to the list.
    search.fill("!!!")
    search.press("Enter")
    expect(a.locator("#search-status")).to_contain_text("no word to search for")
    search.press("Escape")
    expect(a.locator("#search-section")).to_be_hidden()
    expect(a.locator("#conv-list")).to_be_visible()
