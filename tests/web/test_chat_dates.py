"""Dates and the unread total in the browser: day separators and dated older messages, a time
or date on each conversation in the list, "(n)" in the tab's title and a badge on "Chats" on
every page, live."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conversations.models import Conversation, Message
from conversations.services import conversation_direct_get_or_create, message_send
from tests.conftest import accept_all
from tests.web.conftest import in_thread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CLOCK = re.compile(r"^\d{1,2}:\d{2}")  # "09:05", "9:05 AM": a time of day, no date


def _direct(a, b) -> int:
    conversation, _ = in_thread(conversation_direct_get_or_create, user_id=a.pk, other_user_id=b.pk)
    in_thread(accept_all, conversation)
    return conversation.pk


def _send_at(sender, cid, body, at):
    """A message stored as if sent at ``at`` (the conversation's activity too)."""
    message, _ = in_thread(
        message_send, sender_id=sender.pk, conversation_id=cid, body=body, client_id=body
    )
    Message.objects.filter(pk=message.pk).update(created_at=at)
    Conversation.objects.filter(pk=cid).update(last_message_at=at)


def test_day_separators_dated_older_messages_and_times_in_the_list(servers, people, make_user):
    (server,) = servers(1)
    ann = make_user("ann", display_name="Ann")
    bob = make_user("bob", display_name="Bob")
    cat = make_user("cat", display_name="Cat")
    now = timezone.now()
    long_ago = now - timedelta(days=3)
    cid = _direct(ann, bob)
    _send_at(bob, cid, "three days ago", long_ago)
    _send_at(ann, cid, "also then", long_ago + timedelta(minutes=1))
    _send_at(bob, cid, "yesterday", now - timedelta(days=1))
    _send_at(ann, cid, "today", now)
    quiet = _direct(ann, cat)
    _send_at(cat, quiet, "old news", long_ago)
    a = people(ann, server, f"/c/{cid}").page
    b = people(bob, server, f"/c/{cid}").page
    expect(a.locator("#conn")).to_have_attribute("data-state", "open")

    # One separator per day, above its first message: the date, Yesterday, Today.
    bodies = a.locator("#message-list .msg-body")
    expect(bodies).to_have_text(["three days ago", "also then", "yesterday", "today"])
    separators = a.locator("#message-list .day-sep")
    expect(separators).to_have_count(3)
    expect(separators.nth(1)).to_have_text("Yesterday")
    expect(separators.nth(2)).to_have_text("Today")
    local_day = str(long_ago.astimezone().day)  # the browsers run in this machine's zone
    expect(separators.nth(0)).to_contain_text(local_day)
    assert [
        li.get_attribute("data-seq") for li in a.locator("#message-list li:has(> .day-sep)").all()
    ] == ["1", "3", "4"]
    # Older messages carry their date; today's only the time.
    times = a.locator("#message-list .msg-meta time")
    expect(times.nth(0)).to_contain_text(local_day)
    expect(times.nth(2)).to_contain_text("Yesterday")
    expect(times.nth(3)).to_have_text(CLOCK)

    # The list: a time for today's activity, a date for older.
    expect(a.locator(f'#conv-list li[data-conversation-id="{cid}"] .conv-time')).to_have_text(CLOCK)
    old = a.locator(f'#conv-list li[data-conversation-id="{quiet}"] .conv-time')
    expect(old).to_contain_text(local_day)
    expect(old).not_to_have_text(CLOCK)

    # A message arriving now joins today: no new separator, and the list shows its time.
    b.locator("#composer-input").fill("just now")
    b.locator("#composer-input").press("Enter")
    expect(bodies.last).to_have_text("just now")
    expect(separators).to_have_count(3)


def test_unread_total_in_the_title_and_on_the_chats_link_of_every_page(servers, people, make_user):
    (server,) = servers(1)
    ann = make_user("ann", display_name="Ann")
    bob = make_user("bob", display_name="Bob")
    cid = _direct(ann, bob)
    in_thread(message_send, sender_id=ann.pk, conversation_id=cid, body="one", client_id="1")
    bob_chats = people(bob, server, "/").page
    bob_live = people(bob, server, "/live/").page  # the same person in another tab
    a = people(ann, server, f"/c/{cid}").page
    for page in (bob_chats, bob_live, a):
        expect(page.locator("#conn")).to_have_attribute("data-state", "open")

    # On load: the count from the server.
    expect(bob_chats).to_have_title("(1) Chats · Switchboard")
    expect(bob_live).to_have_title(re.compile(r"^\(1\) .*Switchboard$"))
    for page in (bob_chats, bob_live):
        expect(page.locator("#nav-chats .nav-badge")).to_have_attribute("data-count", "1")
    expect(a.locator("#nav-chats .nav-badge")).to_have_count(0)  # her own messages
    assert not a.title().startswith("(")

    # Live: Ann writes twice more; both of Bob's pages count.
    for text in ("two", "three"):
        a.locator("#composer-input").fill(text)
        a.locator("#composer-input").press("Enter")
    expect(bob_chats).to_have_title("(3) Chats · Switchboard")
    expect(bob_live).to_have_title(re.compile(r"^\(3\) "))
    expect(bob_live.locator("#nav-chats .nav-badge")).to_have_text("3 unread")

    # Bob reads on the chat page: the Live tab's title and badge clear too.
    bob_chats.locator(f'#conv-list li[data-conversation-id="{cid}"] a').click()
    expect(bob_chats.locator("#message-list .msg-body")).to_have_text(["one", "two", "three"])
    expect(bob_chats).to_have_title("Chats · Switchboard")
    expect(bob_live.locator("#nav-chats .nav-badge")).to_have_count(0)
    expect(bob_live).not_to_have_title(re.compile(r"^\("))

    # A page without a socket (the profile) reads the total when it loads.
    bob_chats.goto(server.url + "/profile/")
    expect(bob_chats.locator("#nav-chats .nav-badge")).to_have_count(0)
    a.locator("#composer-input").fill("four")
    a.locator("#composer-input").press("Enter")
    expect(bob_live.locator("#nav-chats .nav-badge")).to_have_attribute("data-count", "1")
    bob_chats.reload()
    expect(bob_chats.locator("#nav-chats .nav-badge")).to_have_attribute("data-count", "1")
    expect(bob_chats).to_have_title("(1) Your profile · Switchboard")
