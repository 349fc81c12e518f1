"""Moderator actions: dismiss, warn, suspend, ban, lift, each written to the audit log.

Called by the admin's report queue (``admin.py``) and usable from a shell. A suspension or
ban takes effect everywhere at once: the row in ``Restriction`` refuses log-in, tokens,
tickets and new sockets (accounts asks ``selectors.restriction_get``), and after the commit
the user's sockets are closed on every web process (``auth.revoked`` with 4451, the path of
log-out) and Meet lets go of them (pool ticket, open match). The sanction ends by itself:
a suspension past its ``until`` no longer counts (no task needs to run).
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as AuthUser
from django.db import transaction
from django.utils import timezone

from accounts.restrictions import Restriction as InForce
from accounts.services import sockets_close
from core.errors import CLOSE_ACCOUNT_SUSPENDED, Forbidden, Invalid, NotFound
from core.events import send_event, user_group
from matching.models import Report
from matching.services import meet_exclude

from .models import Action, AuditEntry, Notice, Restriction

User = get_user_model()
# Who may act: staff with the audit log's "add" permission (superusers have every one).
ACT_PERMISSION = "moderation.add_auditentry"
NO_CATEGORY = "other"


def moderator_check(*, moderator: AuthUser | AnonymousUser) -> None:
    """Raise ``forbidden`` unless ``moderator`` may act on reports."""
    if not (
        moderator.is_authenticated
        and moderator.is_active
        and getattr(moderator, "is_staff", False)
        and moderator.has_perm(ACT_PERMISSION)
    ):
        raise Forbidden("Only moderators may act on reports.")


def _reason_clean(reason: object) -> str:
    limit = settings.LIMITS["MODERATION_REASON_MAX_CHARS"]
    if not isinstance(reason, str) or not reason.strip() or len(reason) > limit:
        raise Invalid(f"Give a reason of at most {limit} characters.", limit=limit)
    return reason.strip()


def _until(action: str, duration: object, now: datetime) -> datetime | None:
    if action != Action.SUSPEND:
        if duration is not None:
            raise Invalid("Only a suspension has a duration.")
        return None
    limit = settings.LIMITS["MODERATION_SUSPEND_MAX_SECONDS"]
    if not isinstance(duration, timedelta) or not timedelta(0) < duration <= timedelta(
        seconds=limit
    ):
        raise Invalid(f"A suspension lasts more than 0 s and at most {limit} s; longer: ban.")
    return now + duration


def user_sanction(
    *,
    moderator: AuthUser,
    user_id: object,
    action: object,
    reason: object,
    duration: object = None,
    report: Report | None = None,
) -> AuditEntry:
    """Act on a user (for ``report``, if any) and write the audit entry; return it."""
    moderator_check(moderator=moderator)
    if action not in Action.values:
        raise Invalid("action must be one of: " + ", ".join(Action.values) + ".")
    why = _reason_clean(reason)
    now = timezone.now()
    until = _until(str(action), duration, now)
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise Invalid("user_id must be an integer.")
    target = User.objects.filter(pk=user_id).first()
    if target is None:
        raise NotFound("No such user.")
    if target.pk == moderator.pk and action != Action.DISMISS:
        raise Forbidden("Moderators do not act on their own account.")
    category = report.reason if report is not None else NO_CATEGORY
    with transaction.atomic():
        entry = AuditEntry.objects.create(
            moderator=moderator,
            moderator_username=moderator.get_username(),
            target=target,
            target_username=target.get_username(),
            report=report,
            action=action,
            category=category,
            reason=why,
            until=until,
        )
        if report is not None:
            Report.objects.filter(pk=report.pk).update(reviewed=True)
        if action == Action.WARN:
            _warn(entry=entry, user_id=target.pk)
        elif action in (Action.SUSPEND, Action.BAN):
            _restrict(entry=entry, user_id=target.pk, until=until, category=category)
        elif action == Action.LIFT:
            Restriction.objects.filter(user_id=target.pk).delete()
    return entry


def report_act(
    *,
    moderator: AuthUser,
    report_id: object,
    action: object,
    reason: object,
    duration: object = None,
) -> AuditEntry:
    """Act on a report's reported user (``dismiss`` only marks it reviewed)."""
    moderator_check(moderator=moderator)
    report = Report.objects.filter(pk=report_id).first() if isinstance(report_id, int) else None
    if report is None:
        raise NotFound("No such report.")
    return user_sanction(
        moderator=moderator,
        user_id=report.reported_id,
        action=action,
        reason=reason,
        duration=duration,
        report=report,
    )


def warning_message(*, category: str, reason: str) -> str:
    label = dict(Report.Reason.choices).get(category, category)
    return f"A moderator has warned you ({label}): {reason}"


def _warn(*, entry: AuditEntry, user_id: int) -> None:
    notice = Notice.objects.create(
        user_id=user_id,
        entry=entry,
        message=warning_message(category=entry.category, reason=entry.reason),
    )
    send_event(
        event="moderation.warning",
        data={
            "warning_id": notice.pk,
            "category": entry.category,
            "message": notice.message,
            "at": entry.created_at.isoformat(),
        },
        groups=[user_group(user_id)],
    )


def _restrict(*, entry: AuditEntry, user_id: int, until: datetime | None, category: str) -> None:
    # One row per user: a new suspension or ban replaces the one in force.
    Restriction.objects.update_or_create(
        user_id=user_id, defaults={"until": until, "category": category, "entry": entry}
    )
    in_force = InForce(category=category, until=until)
    # After the commit: a socket that opens meanwhile reads the row (accounts' connect hook).
    sockets_close(user_id=user_id, reason=in_force.close_reason(), code=CLOSE_ACCOUNT_SUSPENDED)
    transaction.on_commit(lambda: meet_exclude(user_id=user_id))


def notices_shown(*, notices: list[Notice]) -> None:
    """Mark warnings as shown on a page."""
    Notice.objects.filter(pk__in=[n.pk for n in notices], shown_at__isnull=True).update(
        shown_at=timezone.now()
    )
