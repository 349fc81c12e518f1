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
