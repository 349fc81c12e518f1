"""Meet explains its waiting, "keep in touch" turns a match into a conversation, and blocks
can be made from a conversation and taken back on the profile: two or three browser
contexts each."""

import re

import pytest
from playwright.sync_api import expect

from conversations.models import Membership
from conversations.services import conversation_direct_get_or_create
from relations.models import Block
from tests.conftest import accept_all
from tests.web.conftest import in_thread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MEDIA = ("camera", "microphone")
# No STUN (host candidates only); relaxation far off, so two seekers with nothing in common
# keep waiting while the test reads the waiting view.
MEET_ENV = {"MEET_STUN_URLS": "", "MEET_TURN_URLS": ""}


def test_the_waiting_view_shows_criteria_count_countdown_and_recent_partners(
    servers, people, make_user
):
    (server,) = servers(1, LIMIT_MATCH_RELAX_AFTER_SECONDS="600,1200", **MEET_ENV)
    ann = make_user("ann", display_name="Ann", interests=["chess"], region="europe")
    bob = make_user("bob", display_name="Bob", interests=["surf"], region="europe")
    a = people(ann, server, "/meet/", permissions=MEDIA).page
    b = people(bob, server, "/meet/", permissions=MEDIA).page
    # The setup form says language is a hard filter, and names it.
    expect(a.locator("#meet-language-note")).to_contain_text("hard filter")
    expect(a.locator("#meet-language")).to_have_text("English")
    expect(a.locator("#meet-region-note")).to_have_text("Your region: europe.")
    for page in (a, b):
        expect(page.locator("#conn")).to_have_attribute("data-state", "open")

    b.get_by_role("button", name="Find a match").click()
    expect(b.locator("#meet-waiting-count")).to_have_text(
        "Nobody else is waiting in English in europe who could match."
    )
    a.get_by_role("button", name="Find a match").click()
    expect(a.locator("#meet-criteria")).to_have_text(
        "Looking for: chess · speaking English only · europe first."
    )
    expect(a.locator("#meet-waiting-count")).to_have_text(
        "1 other person is waiting in English in europe who could match."
    )
    # Bob's view refreshes by itself (match.waiting every 5 s).
    expect(b.locator("#meet-waiting-count")).to_have_text(
        "1 other person is waiting in English in europe who could match."
    )
    expect(a.locator("#meet-widen")).to_contain_text(
        re.compile(r"The search widens in \d+ s: no shared interest needed\.")
    )
    expect(a.locator("#meet-recent")).to_have_text(
        "People you met in the last 30 minutes are not matched with you again."
    )
    expect(a.locator("#meet-waiting")).to_be_visible()
    # Someone without a region cannot pick "Only mine" (the server refuses it too).
    cat = make_user("cat", display_name="Cat", interests=["chess"], region="")
    c = people(cat, server, "/meet/", permissions=MEDIA).page
    expect(c.locator("#meet-region-note")).to_contain_text("Your profile has no region")
    expect(c.get_by_label("Only mine")).to_be_disabled()
    b.get_by_role("button", name="Stop searching").click()
    expect(a.locator("#meet-waiting-count")).to_have_text(
        "Nobody else is waiting in English in europe who could match."
    )


def test_keep_in_touch_on_both_sides_opens_a_direct_conversation(servers, people, make_user):
    (server,) = servers(1, **MEET_ENV)
    ann = make_user("ann", display_name="Ann", interests=["chess"])
    bob = make_user("bob", display_name="Bob", interests=["chess"])
    a = people(ann, server, "/meet/", permissions=MEDIA).page
    b = people(bob, server, "/meet/", permissions=MEDIA).page
    for page in (a, b):
        expect(page.locator("#meet-interests li")).to_have_count(1)
        expect(page.locator("#conn")).to_have_attribute("data-state", "open")
        page.get_by_role("button", name="Find a match").click()
    for page in (a, b):
        expect(page.locator("#meet-matched")).to_be_visible()

    a.get_by_role("button", name="Keep in touch").click()
    expect(a.locator("#meet-keep")).to_contain_text("If Bob chooses it too")
    expect(b.locator("#meet-keep")).to_contain_text("Ann would like to keep in touch")
    assert not Membership.objects.filter(user=ann).exists()  # one choice is not consent
    b.get_by_role("button", name="Keep in touch").click()
    for page, partner in ((a, "Bob"), (b, "Ann")):
        link = page.get_by_role("link", name=f"open your conversation with {partner}")
        expect(link).to_be_visible()
        expect(page.get_by_role("button", name="Kept in touch")).to_be_disabled()
    href = a.locator("#meet-kept-link").get_attribute("href")
    cid = int(href.rsplit("/", 1)[1])
    states = set(Membership.objects.filter(conversation_id=cid).values_list("user_id", "state"))
    assert states == {(ann.pk, "accepted"), (bob.pk, "accepted")}

    # The link opens the conversation, where both can write at once.
    a.locator("#meet-kept-link").click()
    a.wait_for_url(f"**/c/{cid}")
    expect(a.locator("#thread-title")).to_have_text("Bob")
    a.locator("#composer-input").fill("nice to meet you")
    a.locator("#composer-input").press("Enter")
    expect(a.locator("#message-list li.mine .msg-body")).to_have_text(["nice to meet you"])


def test_block_from_a_conversation_keeps_a_refused_text_and_the_profile_unblocks(
    servers, people, make_user
):
    (server,) = servers(1)
    ann = make_user("ann", display_name="Ann")
    bob = make_user("bob", display_name="Bob")
    conversation, _ = in_thread(
        conversation_direct_get_or_create, user_id=ann.pk, other_user_id=bob.pk
    )
    in_thread(accept_all, conversation)
    cid = conversation.pk
    a = people(ann, server, f"/c/{cid}").page
    b = people(bob, server, f"/c/{cid}").page
    for page in (a, b):
        expect(page.locator("#conn")).to_have_attribute("data-state", "open")

    # Ann blocks Bob from the conversation header.
    a.get_by_role("button", name="Block Bob").click()
    expect(a.get_by_role("button", name="Unblock Bob")).to_be_visible()
    expect(a.locator("#thread-blocked")).to_have_text(
        "You blocked Bob: neither of you can send messages here."
    )
    assert Block.objects.filter(blocker=ann, blocked=bob).exists()

    # Bob's send is refused: his text stays in the composer, and he is told why.
    b.locator("#composer-input").fill("are you there?")
    b.locator("#composer-input").press("Enter")
    expect(b.locator("#composer-error")).to_have_text("Not sent: You cannot message this user.")
    expect(b.locator("#composer-input")).to_have_value("are you there?")
    expect(b.locator("#message-list li.mine")).to_have_count(0)

    # Ann's profile lists Bob; Unblock takes the block back.
    a.goto(f"{server.url}/profile/")
    rows = a.locator("#blocks-list li")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Bob")
    a.get_by_role("button", name="Unblock Bob").click()
    expect(rows).to_have_count(0)
    expect(a.locator("#blocks-empty")).to_be_visible()
    expect(a.locator("#blocks-error")).to_have_text("Bob is unblocked.")
    assert not Block.objects.filter(blocker=ann, blocked=bob).exists()

    # Bob sends the text he kept: it goes through now.
    b.locator("#composer-input").press("Enter")
    expect(b.locator("#message-list li.mine .msg-body")).to_have_text(["are you there?"])
    expect(b.locator("#composer-error")).to_have_text("")
