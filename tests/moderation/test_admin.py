"""The moderator's desk in the admin, through Django's test client: acting on reports from
the queue, what a report shows, the audit log read-only, and who may do what."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from matching.models import Report
from moderation.models import AuditEntry, Restriction
from tests.moderation.conftest import report_on

pytestmark = pytest.mark.django_db

QUEUE = "/admin/matching/report/"


def _grant(user, *codenames: str) -> None:
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def desk(moderator):
    _grant(moderator, "view_report", "change_report", "view_auditentry")
    return _signed_in(moderator)


def test_suspend_from_the_queue_with_the_form(make_user, moderator, desk):
    ann, bob, cat = make_user(), make_user(), make_user()
    reports = [report_on(ann, bob), report_on(ann, cat, reason="spam")]
    selected = {"action": "act", "_selected_action": [r.pk for r in reports]}
    form = desk.post(QUEUE, selected)
    assert form.status_code == 200 and b"Act on reports" in form.content
    # A suspension without a duration: the form again, nothing done.
    again = desk.post(QUEUE, {**selected, "apply": "1", "action_choice": "suspend", "reason": "x"})
    assert again.status_code == 200 and b"A suspension needs a duration." in again.content
    assert not AuditEntry.objects.exists()
    done = desk.post(
        QUEUE,
        {
            **selected,
            "apply": "1",
            "action_choice": "suspend",
            "duration": "86400",
            "reason": "Repeated insults.",
        },
    )
    assert done.status_code == 302 and done["Location"] == QUEUE
    entries = list(AuditEntry.objects.order_by("report_id"))
    assert [(e.report_id, e.action, e.moderator_id, e.reason) for e in entries] == [
        (r.pk, "suspend", moderator.pk, "Repeated insults.") for r in reports
    ]
    assert [e.category for e in entries] == ["harassment", "spam"]
    restriction = Restriction.objects.get(user=ann)
    assert restriction.entry_id == AuditEntry.objects.latest("pk").pk  # the latest one counts
    assert abs((restriction.until - restriction.entry.created_at).total_seconds() - 86400) < 1
    assert all(
        Report.objects.filter(pk__in=[r.pk for r in reports]).values_list("reviewed", flat=True)
    )
    page = desk.get(f"{QUEUE}{reports[0].pk}/change/").content.decode()
    assert f"{moderator.username}: suspend {ann.username} until" in page


def test_report_page_shows_the_room_record_and_the_audit(make_user, moderator, desk):
    ann, bob = make_user(), make_user()
    report = report_on(ann, bob)
    Report.objects.filter(pk=report.pk).update(
        signals=[{"at": 1_795_000_000_000, "from": ann.pk, "kind": "offer", "size": 345}],
        room_lines=[{"at": 1_795_000_001_000, "from": ann.pk, "text": "you will regret it"}],
    )
    page = desk.get(f"{QUEUE}{report.pk}/change/").content.decode()
    assert "reported offer 345" in page and "you will regret it" in page
    assert "No action yet." in page
    plain = report_on(bob, ann)
    page = desk.get(f"{QUEUE}{plain.pk}/change/").content.decode()
    assert "Not attached." in page and "None recorded." in page


def test_the_audit_log_is_read_only(make_user, moderator, desk):
    ann, bob = make_user(), make_user()
    report = report_on(ann, bob)
    entry = AuditEntry.objects.create(
        moderator=moderator,
        moderator_username=moderator.username,
        target=ann,
        target_username=ann.username,
        report=report,
        action="warn",
        category="harassment",
        reason="first",
    )
    url = f"/admin/moderation/auditentry/{entry.pk}/"
    assert desk.get("/admin/moderation/auditentry/").status_code == 200
    view = desk.get(f"{url}change/")
    assert view.status_code == 200 and b'name="_save"' not in view.content
    assert desk.post(f"{url}change/", {"reason": "edited"}).status_code == 403
    assert desk.post(f"{url}delete/", {"post": "yes"}).status_code == 403
    assert desk.get("/admin/moderation/auditentry/add/").status_code == 403
    assert AuditEntry.objects.get(pk=entry.pk).reason == "first"


def test_who_may_act(make_user):
    ann, bob = make_user(), make_user()
    report = report_on(ann, bob)
    act = {
        "_selected_action": [report.pk],
        "action": "act",
        "apply": "1",
        "reason": "x",
        "duration": "",
    }
    # Not staff: the admin sends them to its log-in page.
    response = _signed_in(bob).post(QUEUE, act)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    # Staff who may read reports but not act: the action is not theirs.
    reader = make_user()
    reader.is_staff = True
    reader.save()
    _grant(reader, "view_report", "change_report")
    client = _signed_in(reader)
    assert b'value="act"' not in client.get(QUEUE).content
    client.post(QUEUE, act)
    assert not AuditEntry.objects.exists() and not Restriction.objects.exists()
