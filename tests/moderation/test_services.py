"""Moderator actions in process (moderation/services.py): dismiss, warn (pushed to sockets,
shown once on the next page), lift, the audit log, validation and who may act."""

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from core.errors import Forbidden, Invalid, NotFound
from core.event_schema import EVENT_SCHEMAS, event_validate
from matching.models import Report
from moderation import selectors, services
from moderation.models import AuditEntry, Notice, Restriction
from tests.conftest import api_as, ws_connect
from tests.moderation.conftest import report_on

pytestmark = pytest.mark.django_db(transaction=True)


def test_dismiss_marks_the_report_reviewed_and_is_logged(make_user, moderator):
    ann, bob = make_user(), make_user()
    report = report_on(ann, bob)
    entry = services.report_act(
        moderator=moderator, report_id=report.pk, action="dismiss", reason="Banter, not abuse."
    )
    assert Report.objects.get(pk=report.pk).reviewed
    assert (entry.action, entry.report_id, entry.target_id, entry.until) == (
        "dismiss",
        report.pk,
        ann.pk,
        None,
    )
    assert entry.moderator_username == moderator.username and entry.created_at is not None
    assert not Restriction.objects.exists() and not Notice.objects.exists()
    assert api_as(ann).get("/api/meet/current").status_code == 200
    with pytest.raises(ValueError):  # written once
        entry.reason = "edited"
        entry.save()


async def test_a_warning_reaches_the_socket_and_the_next_page_once(make_user, moderator):
    ann, bob = await database_sync_to_async(make_user)(), await database_sync_to_async(make_user)()
    report = await database_sync_to_async(report_on)(ann, bob, reason="hate")
    async with ws_connect(ann) as ws:
        await database_sync_to_async(services.report_act)(
            moderator=moderator, report_id=report.pk, action="warn", reason="Mind your words."
        )
        event = await ws.event("moderation.warning")
        assert set(event["data"]) == set(EVENT_SCHEMAS["moderation.warning"])
        event_validate("moderation.warning", event["data"])
        message = "A moderator has warned you (Hate speech): Mind your words."
        assert event["data"]["message"] == message and event["data"]["category"] == "hate"
        assert (await ws.request("ping"))["ok"]  # a warning does not close anything

    def pages() -> tuple[str, str]:
        browser = Client()
        browser.force_login(ann)
        return browser.get("/").content.decode(), browser.get("/").content.decode()

    first, second = await database_sync_to_async(pages)()
    assert message in first and message not in second
    assert await database_sync_to_async(selectors.notices_unshown)(user_id=ann.pk) == []


def test_lift_ends_a_ban_and_a_new_suspension_replaces_the_old(make_user, moderator):
    ann, bob = make_user(), make_user()
    report = report_on(ann, bob, reason="spam")
    services.report_act(moderator=moderator, report_id=report.pk, action="ban", reason="Bot.")
    assert selectors.restriction_get(ann.pk).until is None
    services.report_act(
        moderator=moderator,
        report_id=report.pk,
        action="suspend",
        reason="Appeal: a week instead.",
        duration=timedelta(days=7),
    )
    assert selectors.restriction_get(ann.pk).until is not None
    assert Restriction.objects.filter(user=ann).count() == 1
    services.user_sanction(moderator=moderator, user_id=ann.pk, action="lift", reason="Appeal won.")
    assert selectors.restriction_get(ann.pk) is None
    assert api_as(ann).get("/api/meet/current").status_code == 200
    assert list(AuditEntry.objects.order_by("pk").values_list("action", flat=True)) == [
        "ban",
        "suspend",
        "lift",
    ]


def test_bad_input_is_refused_before_anything_is_written(make_user, moderator):
    ann, bob = make_user(), make_user()
    report = report_on(ann, bob)
    act = {"moderator": moderator, "report_id": report.pk}
    for bad in (
        {"action": "shout", "reason": "x"},
        {"action": "warn", "reason": "  "},
        {"action": "warn", "reason": "x" * 1001},
        {"action": "suspend", "reason": "x"},  # no duration
        {"action": "suspend", "reason": "x", "duration": timedelta(days=400)},
        {"action": "suspend", "reason": "x", "duration": timedelta(0)},
        {"action": "ban", "reason": "x", "duration": timedelta(days=1)},
    ):
        with pytest.raises(Invalid):
            services.report_act(**act, **bad)
    with pytest.raises(NotFound):
        services.report_act(moderator=moderator, report_id=10**9, action="warn", reason="x")
    with pytest.raises(Forbidden):  # not on oneself
        services.user_sanction(moderator=moderator, user_id=moderator.pk, action="ban", reason="x")
    assert not AuditEntry.objects.exists() and not Report.objects.get(pk=report.pk).reviewed


def test_only_staff_with_the_permission_may_act(make_user, moderator):
    ann, bob = make_user(), make_user()
    report = report_on(ann, bob)
    staff_without = make_user()
    staff_without.is_staff = True
    staff_without.save()
    for who in (bob, staff_without, AnonymousUser()):
        with pytest.raises(Forbidden):
            services.report_act(moderator=who, report_id=report.pk, action="ban", reason="x")
    assert not AuditEntry.objects.exists() and selectors.restriction_get(ann.pk) is None
