"""Managing a group in the browser: rename, add (an invitation accepted), remove, leave; every
other open page follows live. Three people, three browser contexts, one server process."""

import pytest
from playwright.sync_api import expect

from conversations.services import conversation_group_create
from tests.conftest import accept_all
from tests.web.conftest import in_thread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _open_members(page):
    page.locator("#group-open").click()
    dialog = page.locator("#group-dialog")
    expect(dialog).to_be_visible()
    return dialog


def test_owner_renames_adds_and_removes_a_member_leaves_and_every_page_follows(
    servers, people, make_user
):
    (server,) = servers(1)
    ann = make_user("ann", display_name="Ann")
    bob = make_user("bob", display_name="Bob")
    cat = make_user("cat", display_name="Cat")
    group = in_thread(
        lambda: accept_all(
            conversation_group_create(user_id=ann.pk, title="Climbers", member_ids=[bob.pk])
        )
    )
    cid = group.pk
    a = people(ann, server, f"/c/{cid}").page
    b = people(bob, server, f"/c/{cid}").page
    c = people(cat, server, "/").page
    for page in (a, b, c):
        expect(page.locator("#conn")).to_have_attribute("data-state", "open")
    expect(b.locator("#thread-sub")).to_have_text("2 members, 1 online")

    # The members, as everyone sees them; only the owner may rename, add and remove.
    bob_dialog = _open_members(b)
    expect(bob_dialog.locator("#group-members li .member-name")).to_have_text(["Ann", "Bob"])
    expect(bob_dialog.locator("#group-members li").first).to_contain_text("owner")
    expect(bob_dialog.locator("#group-rename")).to_be_hidden()
    expect(bob_dialog.locator("#group-add")).to_be_hidden()
    expect(bob_dialog.locator(".member-remove")).to_have_count(0)
    ann_dialog = _open_members(a)
    expect(ann_dialog.locator(".member-remove")).to_have_count(1)  # Bob's, not her own

    # Ann renames: Bob's open dialog, head and list follow.
    ann_dialog.get_by_label("New name for the group").fill("Boulderers")
    ann_dialog.get_by_role("button", name="Rename").click()
    expect(a.locator("#thread-title")).to_have_text("Boulderers")
    expect(bob_dialog.locator("#group-dialog-title")).to_have_text("Boulderers")
    expect(b.locator("#thread-title")).to_have_text("Boulderers")
    expect(b.locator("#conv-list .conv-title")).to_have_text(["Boulderers"])

    # Ann adds Cat, who is not her contact: Cat is invited, sees the request and accepts.
    ann_dialog.get_by_label("Add people by username or name").fill("cat")
    expect(ann_dialog.locator("#group-add-results [role=option]")).to_have_text(["Cat @cat"])
    ann_dialog.get_by_label("Add people by username or name").press("Enter")
    expect(ann_dialog.locator('#group-members li[data-state="pending"]')).to_contain_text("invited")
    request = c.locator("#req-list li")
    expect(request).to_have_count(1)
    expect(request.locator(".conv-title")).to_have_text("Boulderers")
    expect(request.locator(".conv-preview")).to_have_text("Invited by Ann")
    expect(c.locator("#conv-list li")).to_have_count(0)
    request.get_by_role("button", name="Accept invitation").click()
    expect(c.locator("#req-section")).to_be_hidden()
    expect(c.locator("#conv-list .conv-title")).to_have_text(["Boulderers"])
    expect(ann_dialog.locator("#group-members li .member-name")).to_have_text(["Ann", "Bob", "Cat"])
    expect(ann_dialog.locator('#group-members li[data-state="pending"]')).to_have_count(0)
    expect(bob_dialog.locator("#group-members li .member-name")).to_have_text(["Ann", "Bob", "Cat"])
    expect(b.locator("#group-open")).to_have_text("Members (3)")

    # Ann removes Bob: his page says so and drops the group; the others' lists follow.
    ann_dialog.get_by_role("button", name="Remove Bob").click()
    expect(ann_dialog.locator("#group-members li .member-name")).to_have_text(["Ann", "Cat"])
    expect(b.locator("#toast")).to_contain_text("no longer in that conversation")
    expect(b.locator("#group-dialog")).to_be_hidden()
    expect(b.locator("#thread")).to_be_hidden()
    expect(b.locator("#conv-list li")).to_have_count(0)
    c.locator("#conv-list a").click()
    cat_dialog = _open_members(c)
    expect(cat_dialog.locator("#group-members li .member-name")).to_have_text(["Ann", "Cat"])
    expect(cat_dialog.locator(".member-remove")).to_have_count(0)

    # Cat leaves (asked once more in place): her list drops it, Ann's members follow.
    cat_dialog.get_by_role("button", name="Leave group").click()
    cat_dialog.get_by_role("button", name="Leave", exact=True).click()
    expect(c.locator("#group-dialog")).to_be_hidden()
    expect(c.locator("#thread")).to_be_hidden()
    expect(c.locator("#conv-list li")).to_have_count(0)
    expect(ann_dialog.locator("#group-members li .member-name")).to_have_text(["Ann"])
    expect(a.locator("#thread-sub")).to_have_text("1 member, 0 online")
    # What the pages show is what is stored.
    c.reload()
    expect(c.locator("#conn")).to_have_attribute("data-state", "open")
    expect(c.locator("#conv-list li")).to_have_count(0)
    b.reload()
    expect(b.locator("#conv-list li")).to_have_count(0)
