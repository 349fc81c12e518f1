"""A server process dies or freezes mid-conversation: the UI says so, recovers, loses and doubles
nothing."""

import os
import signal
import time

import pytest
from playwright.sync_api import expect

from conversations.services import conversation_direct_get_or_create, message_send
from tests.conftest import accept_all
from tests.web.conftest import in_thread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _send(page, text):
    page.locator("#composer-input").fill(text)
    page.locator("#composer-input").press("Enter")


def _ann_and_bob_in_a_conversation(servers, people, make_user):
    """One server; Ann's and Bob's pages open on their direct conversation: returns the
    server, the conversation's id, Bob, and the two pages."""
    (server,) = servers(1)
    ann = make_user("ann", display_name="Ann")
    bob = make_user("bob", display_name="Bob")
    conversation, _ = in_thread(
        conversation_direct_get_or_create, user_id=ann.pk, other_user_id=bob.pk
    )
    in_thread(accept_all, conversation)
    cid = conversation.pk
    a = people(ann, server, f"/c/{cid}").page
    return server, cid, bob, a, people(bob, server, f"/c/{cid}").page


def test_server_restart_mid_conversation_recovers_without_loss_or_duplicates(
    servers, people, make_user
):
    server, cid, bob, a, b = _ann_and_bob_in_a_conversation(servers, people, make_user)
    _send(a, "before the crash")
    expect(b.locator("#message-list .msg-body")).to_have_text(["before the crash"])
    # Acknowledged to Ann too (her reply and Bob's push race each other) before the crash.
    expect(a.locator("#message-list li.pending")).to_have_count(0)

    server.kill()  # SIGKILL: no close frame, sockets just drop
    for page in (a, b):
        expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
        expect(page.locator("#conn")).to_contain_text("Reconnecting")

    # Ann writes while there is no server: the message waits in the outbox, shown as sending.
    _send(a, "written while down")
    pending = a.locator("#message-list li.pending")
    expect(pending).to_have_count(1)
    expect(pending).to_have_attribute("data-status", "pending")
    # Someone else's message is stored meanwhile (another process would do this): both
    # missed its push, the resume brings it.
    in_thread(
        message_send, sender_id=bob.pk, conversation_id=cid, body="missed push", client_id="m1"
    )

    server.start()  # the same port: the pages reconnect to it on their own
    for page in (a, b):
        expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=45_000)
    expected = ["before the crash", "missed push", "written while down"]
    for page in (a, b):
        expect(page.locator("#message-list .msg-body")).to_have_text(expected)
    expect(pending).to_have_count(0)

    # And the conversation carries on both ways, each message exactly once.
    _send(b, "back again")
    expect(a.locator("#message-list .msg-body").last).to_have_text("back again")
    _send(a, "indeed")
    expected += ["back again", "indeed"]
    for page in (a, b):
        expect(page.locator("#message-list .msg-body")).to_have_text(expected)
        expect(page.locator("#message-list li.pending")).to_have_count(0)
        seqs = page.locator("#message-list li").evaluate_all(
            "(lis) => lis.map((li) => Number(li.dataset.seq))"
        )
        assert seqs == [1, 2, 3, 4, 5]
    assert a.evaluate("window.switchboard.pendingMessages().length") == 0
    assert a.evaluate("localStorage.length") == 0  # the persisted outbox is empty again


# The library's default heartbeatIntervalMs + heartbeatTimeoutMs (docs/client.md): a server
# that stops answering is shown as reconnecting within this.
SILENT_SERVER_DETECTED_SECONDS = 10
# What the browsers may add to it on this shared 2-core machine (timers, frames, a redraw).
SLACK_SECONDS = 4


def test_a_frozen_server_is_shown_reconnecting_within_the_heartbeat_time_and_recovers(
    servers, people, make_user
):
    server, _, _, a, b = _ann_and_bob_in_a_conversation(servers, people, make_user)
    for page in (a, b):
        expect(page.locator("#conn")).to_have_attribute("data-state", "open")
    _send(a, "before the freeze")
    expect(b.locator("#message-list .msg-body")).to_have_text(["before the freeze"])

    # SIGSTOP: the sockets stay open (the kernel still holds the connections), nothing answers.
    os.kill(server.pid, signal.SIGSTOP)
    try:
        frozen_at = time.monotonic()
        _send(a, "written during the freeze")
        expect(a.locator("#message-list li.pending")).to_have_count(1)
        for page in (a, b):
            expect(page.locator("#conn")).to_have_attribute(
                "data-state",
                "reconnecting",
                timeout=(SILENT_SERVER_DETECTED_SECONDS + SLACK_SECONDS) * 1000,
            )
            expect(page.locator("#conn")).to_contain_text("Reconnecting")
        assert time.monotonic() - frozen_at < SILENT_SERVER_DETECTED_SECONDS + SLACK_SECONDS
        expect(a.locator("#message-list li.pending")).to_have_count(1)  # still waiting
    finally:
        os.kill(server.pid, signal.SIGCONT)

    for page in (a, b):
        expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=45_000)
        expect(page.locator("#conn")).to_contain_text("Connected")
    expected = ["before the freeze", "written during the freeze"]
    for page in (a, b):
        expect(page.locator("#message-list .msg-body")).to_have_text(expected)
    expect(a.locator("#message-list li.pending")).to_have_count(0)
    assert a.evaluate("window.switchboard.pendingMessages().length") == 0
