"""Moderation records: the audit log of every action, the sanction in force per user, and
the warnings to show (``Notice``) (docs/subsystems/moderation.md)."""

from typing import Any

from django.conf import settings
from django.db import models


class Action(models.TextChoices):
    DISMISS = "dismiss", "Dismiss the report"
    WARN = "warn", "Warn the user"
    SUSPEND = "suspend", "Suspend for a period"
    BAN = "ban", "Ban"
    LIFT = "lift", "Lift a suspension or ban"


class AuditEntry(models.Model):
    """One moderator action, written once and never changed (the admin shows it read-only).

    Who, when, why, on which report, what, until when. The people are kept by id and by
    name: deleting an account empties the link, not the record of what was done.
    """

    moderator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    moderator_username = models.CharField(max_length=150)
    target = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_username = models.CharField(max_length=150)
    report = models.ForeignKey(
        "matching.Report", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit"
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    # The report's reason ("harassment", ...) the action was taken for; "other" without one.
    category = models.CharField(max_length=20)
    reason = models.TextField(max_length=settings.LIMITS["MODERATION_REASON_MAX_CHARS"])
    until = models.DateTimeField(null=True, blank=True)  # a suspension's end
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.target_username} by {self.moderator_username}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("An audit log entry is written once and never changed.")
        super().save(*args, **kwargs)


class Restriction(models.Model):
    """The sanction in force on a user: suspended until ``until``, or banned (null).

    Read at every log-in, token use and socket connect (``selectors.restriction_get``); a
    suspension whose ``until`` has passed is lifted by that comparison, with nothing to run.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    until = models.DateTimeField(null=True, blank=True)
    category = models.CharField(max_length=20)
    entry = models.ForeignKey(AuditEntry, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"{self.user_id} {'banned' if self.until is None else f'until {self.until}'}"


class Notice(models.Model):
    """A moderator's warning, pushed to the user's sockets and shown on their next page."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    entry = models.ForeignKey(AuditEntry, on_delete=models.PROTECT, related_name="+")
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    shown_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["user"], condition=models.Q(shown_at__isnull=True), name="notice_unshown"
            )
        ]

    def __str__(self) -> str:
        return f"warning to {self.user_id} ({'shown' if self.shown_at else 'not shown yet'})"
