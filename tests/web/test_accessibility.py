"""axe-core on every page state a user meets: 0 serious or critical violations.

(The harness also checks every page every browser test left open, at its end:
tests/web/conftest.py.)
"""

import pytest
from playwright.sync_api import expect

from conversations.services import conversation_direct_get_or_create, message_send
from tests.conftest import accept_all
from tests.web.conftest import EXPECT_TIMEOUT_MS, axe_violations, in_thread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MEDIA = ("camera", "microphone")


def test_every_page_state_has_no_serious_or_critical_violation(servers, people, make_user, browser):
    (server,) = servers(1, MEET_STUN_URLS="", MEET_TURN_URLS="")
    ann = make_user("ann", display_name="Ann", interests=["chess", "music"])
    bob = make_user("bob", display_name="Bob", interests=["chess"])
    conversation, _ = in_thread(
        conversation_direct_get_or_create, user_id=ann.pk, other_user_id=bob.pk
    )
    in_thread(accept_all, conversation)
    for i in range(3):
        in_thread(
            message_send,
            sender_id=bob.pk,
            conversation_id=conversation.pk,
            body=f"hello {i}",
            client_id=f"c{i}",
        )
    found: dict[str, list[str]] = {}

    def check(page, state):
        violations = axe_violations(page)
        if page.locator("h1:visible").count() != 1:
            violations.append("not exactly one visible <h1>: the page names no view")
        if violations:
            found[state] = violations

    # Signed out: the welcome page, log-in (also with its error), sign-up (also with errors).
    stranger = browser.new_context(base_url=server.url)
    stranger.set_default_timeout(EXPECT_TIMEOUT_MS)
    try:
        page = stranger.new_page()
        page.goto("/")
        check(page, "signed-out home")
        page.goto("/accounts/login/")
        check(page, "log-in")
        page.get_by_label("Username").fill("nobody")
        page.get_by_label("Password").fill("wrong-password-1")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()
        check(page, "log-in with an error")
        page.goto("/accounts/signup/")
        check(page, "sign-up")
        page.get_by_role("button", name="Sign up").click()  # empty: the browser's or ours
        page.wait_for_load_state()
        check(page, "sign-up submitted empty")
    finally:
        stranger.close()

    # Signed in: chats, a conversation, the "New" dialog, the profile.
    a = people(ann, server, "/", permissions=MEDIA).page
    expect(a.locator("#conv-list li")).to_have_count(1)
    check(a, "chat list")
    a.locator("#conv-list li").first.click()
    expect(a.locator("#message-list .msg-body")).to_have_count(3)
    check(a, "open conversation")
    a.goto("/")
    a.get_by_role("button", name="New").click()
    expect(a.locator("#new-conv")).to_be_visible()
    check(a, "new conversation dialog")
    a.goto("/profile/")
    check(a, "profile")

    # Meet: setup, waiting, matched (with Bob), the report dialog; Live.
    b = people(bob, server, "/meet/", permissions=MEDIA).page
    a.goto("/meet/")
    expect(a.locator("#meet-interests li")).to_have_count(2)
    expect(a.locator("#conn")).to_have_attribute("data-state", "open")
    check(a, "Meet setup")
    a.get_by_role("button", name="Find a match").click()
    expect(a.locator("#meet-waiting")).to_be_visible()
    check(a, "Meet waiting")
    expect(b.locator("#conn")).to_have_attribute("data-state", "open")
    b.get_by_role("button", name="Find a match").click()
    expect(a.locator("#meet-matched")).to_be_visible()
    a.get_by_label("Message to your match").fill("hi")
    a.get_by_label("Message to your match").press("Enter")
    expect(b.locator("#meet-log .msg-body")).to_have_text(["hi"])
    check(a, "Meet matched")
    check(b, "Meet matched (the other side)")
    b.get_by_role("button", name="Report").click()
    expect(b.locator("#report-dialog")).to_be_visible()
    check(b, "Meet report dialog")
    b.get_by_role("button", name="Cancel").click()
    b.get_by_role("button", name="Next").click()
    expect(a.locator("#meet-ended")).to_be_visible()
    check(a, "Meet ended")
    a.goto("/live/")
    expect(a.locator("#live")).to_have_attribute("data-subscribed", "true")
    check(a, "Live")

    assert not found, "\n".join(f"{state}:\n  " + "\n  ".join(v) for state, v in found.items())
