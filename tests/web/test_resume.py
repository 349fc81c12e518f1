"""A page that was offline comes back to what changed meanwhile, from `sync` alone: edits and
deletes of messages it already showed, a group it was added to, an invitation it received
(no reload, no REST re-list of the conversations or the messages)."""

import re

import pytest
from playwright.sync_api import expect

from conversations.models import Message
from conversations.services import (
    conversation_direct_get_or_create,
    conversation_group_create,
    message_send,
)
from tests.conftest import accept_all
from tests.web.conftest import in_thread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# What the page used to re-read after every reconnect: the list, the requests, the thread.
RELIST = re.compile(r"/api/conversations(\?state=pending)?$|/api/conversations/\d+/messages")


def test_an_offline_page_shows_edits_deletes_and_new_conversations_on_reconnect(
    servers, people, make_user
):
    (server,) = servers(1)
    ann = make_user("ann", display_name="Ann")
    bob = make_user("bob", display_name="Bob")
    cat = make_user("cat", display_name="Cat")
    conversation, _ = in_thread(
        conversation_direct_get_or_create, user_id=ann.pk, other_user_id=bob.pk
    )
    in_thread(accept_all, conversation)
    cid = conversation.pk
    for i, text in enumerate(["one", "two", "three"]):
        in_thread(message_send, sender_id=ann.pk, conversation_id=cid, body=text, client_id=f"{i}")
    ids = dict(Message.objects.filter(conversation_id=cid).values_list("body", "id"))
    a = people(ann, server, f"/c/{cid}").page
    bob_person = people(bob, server, f"/c/{cid}")
    b = bob_person.page
    for page in (a, b):
        expect(page.locator("#message-list .msg-body")).to_have_text(["one", "two", "three"])
        expect(page.locator("#conn")).to_have_attribute("data-state", "open")

    # Bob's network goes away (his socket with it).
    bob_person.context.set_offline(True)
    b.evaluate("window.switchboard.ws && window.switchboard.ws.close()")
    expect(b.locator("#conn")).to_have_attribute("data-state", "offline")

    # Meanwhile Ann edits and deletes older messages from her page, adds Bob to a new group
    # and Cat (a stranger to Bob) invites him to hers.
    for frame_type, data in (
        ("message.edit", {"message_id": ids["two"], "body": "two, edited"}),
        ("message.delete", {"message_id": ids["one"]}),
    ):
        a.evaluate("([t, d]) => window.switchboard.request(t, d)", [frame_type, data])
    expect(a.locator("#message-list .msg-body")).to_have_text(
        ["Message deleted", "two, edited", "three"]
    )
    group = in_thread(
        conversation_group_create, user_id=ann.pk, title="Weekend plans", member_ids=[bob.pk]
    )
    in_thread(
        message_send, sender_id=ann.pk, conversation_id=group.pk, body="Saturday?", client_id="g"
    )
    in_thread(conversation_group_create, user_id=cat.pk, title="Cat's club", member_ids=[bob.pk])

    relisted: list[str] = []
    b.on("request", lambda r: relisted.append(r.url) if RELIST.search(r.url) else None)
    bob_person.context.set_offline(False)
    expect(b.locator("#conn")).to_have_attribute("data-state", "open", timeout=30_000)

    # The thread shows the edit and the delete, the list the new group with its last
    # message and unread count, the requests the invitation.
    expect(b.locator("#message-list .msg-body")).to_have_text(
        ["Message deleted", "two, edited", "three"]
    )
    expect(b.locator('#message-list li[data-seq="2"] .msg-edited')).to_have_count(1)
    item = b.locator(f'#conv-list li[data-conversation-id="{group.pk}"]')
    expect(item.locator(".conv-title")).to_have_text("Weekend plans")
    expect(item.locator(".conv-preview")).to_have_text("Saturday?")
    expect(item.locator(".badge")).to_have_text("1")
    expect(b.locator("#req-list .conv-title")).to_have_text(["Cat's club"])
    assert relisted == [], relisted  # all of it came with sync

    # And the new group is live: Ann's next message there reaches Bob's list.
    in_thread(
        message_send, sender_id=ann.pk, conversation_id=group.pk, body="Or Sunday", client_id="h"
    )
    expect(item.locator(".conv-preview")).to_have_text("Or Sunday")
    expect(item.locator(".badge")).to_have_text("2")
