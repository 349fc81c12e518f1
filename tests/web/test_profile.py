"""The profile page: interests as chips with autocomplete from GET /api/interests?q=."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PAYLOAD = "<img src=x onerror=alert(5)>"


def test_interest_autocomplete_adds_and_saves_interests_as_text(servers, people, make_user):
    (server,) = servers(1)
    make_user("cat", interests=["photography", "photosynthesis", PAYLOAD])
    ann = make_user("ann", display_name="Ann", interests=["chess"])
    person = people(ann, server, "/profile/")
    page = person.page
    chips = page.locator("#interest-chips li")
    expect(chips).to_have_count(1)
    expect(chips).to_have_attribute("data-interest", "chess")

    box = page.get_by_role("combobox", name="Interests")
    box.fill("phot")
    options = page.locator("#interest-suggestions [role=option]")
    expect(options).to_have_count(2)
    box.press("ArrowDown")  # the second suggestion
    expected = options.nth(1).get_attribute("data-interest")
    box.press("Enter")
    box.fill("<im")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text(PAYLOAD)
    options.first.click()
    box.fill("board games")
    box.press(",")
    expect(chips).to_have_count(4)
    page.get_by_role("button", name="Remove chess").click()
    expect(chips).to_have_count(3)

    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    expect(chips).to_have_count(3)
    saved = chips.evaluate_all("(lis) => lis.map((li) => li.dataset.interest)")
    assert sorted(saved) == sorted([expected, PAYLOAD, "board games"])
    expect(page.locator("#interest-chips")).to_contain_text(PAYLOAD)
    assert person.dialogs == []
    assert page.locator("#main img").count() == 0


LONGEST = 50  # settings.LIMITS["INTEREST_MAX_LENGTH"]
PHONE = {"width": 390, "height": 844}
LONG_NAME = "maximiliana_von_und_zu_hohenzollern_sigmaringen_the_third"


def test_saved_is_confirmed_and_an_interest_cannot_outgrow_the_servers_limit(
    servers, people, make_user
):
    (server,) = servers(1)
    ann = make_user("ann", display_name="Ann", interests=["chess"])
    page = people(ann, server, "/profile/").page
    expect(page.locator("#profile-saved")).to_have_count(0)
    box = page.get_by_role("combobox", name="Interests")
    expect(box).to_have_attribute("maxlength", str(LONGEST))
    expect(page.locator("#interest-help")).to_contain_text(f"each at most {LONGEST} characters")
    box.press_sequentially("x" * (LONGEST + 10))
    expect(box).to_have_value("x" * LONGEST)  # the browser stops at the server's limit
    expect(page.locator("#interest-problem")).to_have_text(
        f"An interest has at most {LONGEST} characters."
    )
    box.press("Backspace")
    expect(page.locator("#interest-problem")).to_have_text("")
    # Pasted text with commas: each piece is checked before it becomes a chip.
    box.fill("y" * 10 + ", " + "z" * 40)
    expect(page.locator("#interest-chips li")).to_have_count(2)  # chess, yyy...
    box.fill("")
    page.get_by_label("Display name").fill("Ann Q.")

    page.get_by_role("button", name="Save").click()
    expect(page.locator("#profile-saved")).to_have_text("Saved.")
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    expect(page.get_by_label("Display name")).to_have_value("Ann Q.")
    chips = page.locator("#interest-chips li")
    assert sorted(chips.evaluate_all("(lis) => lis.map((li) => li.dataset.interest)")) == [
        "chess",
        "y" * 10,
    ]
    page.reload()  # said once, not on every later visit
    expect(page.locator("#profile-saved")).to_have_count(0)


def test_long_name_truncates_and_the_composer_is_on_a_phone_screen(servers, people, make_user):
    from conversations.services import conversation_direct_get_or_create, message_send
    from tests.conftest import accept_all
    from tests.web.conftest import in_thread

    (server,) = servers(1)
    long = make_user(LONG_NAME, display_name="M" * 60)
    bob = make_user("bob", display_name="Bob")
    conversation, _ = in_thread(
        conversation_direct_get_or_create, user_id=long.pk, other_user_id=bob.pk
    )
    in_thread(accept_all, conversation)
    for i in range(30):  # more than a phone's screen of history
        in_thread(
            message_send,
            sender_id=bob.pk,
            conversation_id=conversation.pk,
            body=f"line {i}",
            client_id=f"c{i}",
        )
    phone = people(long, server, "/", viewport=PHONE).page
    desk = people(bob, server, f"/c/{conversation.pk}").page

    # The name is cut with an ellipsis; nothing is wider than the screen.
    who = phone.locator(".topbar .logout .who")
    expect(who).to_have_text(LONG_NAME)
    assert who.evaluate("(e) => e.scrollWidth > e.clientWidth")  # truncated
    assert who.evaluate("(e) => getComputedStyle(e).textOverflow") == "ellipsis"
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    bar = phone.locator(".topbar").bounding_box()
    assert bar is not None and bar["x"] + bar["width"] <= PHONE["width"]
    expect(phone.get_by_role("button", name=f"Log out {LONG_NAME}")).to_be_visible()

    phone.locator("#conv-list li").first.click()
    composer = phone.get_by_label("Message", exact=True)
    expect(composer).to_be_in_viewport(ratio=1)
    expect(phone.get_by_role("button", name="Send")).to_be_in_viewport(ratio=1)
    assert phone.evaluate("document.documentElement.scrollHeight") <= PHONE["height"]
    composer.fill("from my phone")
    composer.press("Enter")
    expect(desk.locator("#message-list .msg-body").last).to_have_text("from my phone")
    expect(phone.locator("#message-list .msg-body").last).to_be_in_viewport()
