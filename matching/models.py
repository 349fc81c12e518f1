"""Meet records in PostgreSQL: matches and reports (the pool itself lives in Redis; blocks
are a relation between people: ``relations.models.Block``)."""

from django.conf import settings
from django.db import models


class Match(models.Model):
    """Two users paired by the pool; the room lives while ``ended_at`` is empty."""

    class EndReason(models.TextChoices):
        SKIP = "skip"
        BLOCK = "block"
        EXPIRED = "expired"
        # The member in ``ended_by`` had no Meet connection left for the grace
        # (LIMITS["MEET_PARTNER_GRACE_SECONDS"]): closed on every device, or their process died.
        PARTNER_LEFT = "partner_left"
        # A moderator suspended or banned a member (docs/subsystems/moderation.md).
        MODERATION = "moderation"

    # user_a is the seeker whose decision found the pair; it makes the WebRTC offer.
    user_a = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    user_b = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    shared_interests = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # "Keep in touch": each side's choice during the match; when both chose, the direct
    # conversation it became (matching sits above conversations: docs/architecture.md).
    keep_a = models.BooleanField(default=False)
    keep_b = models.BooleanField(default=False)
    conversation = models.ForeignKey(
        "conversations.Conversation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name_plural = "matches"
        indexes = [
            models.Index(fields=["user_a", "-created_at"], name="match_user_a"),
            models.Index(fields=["user_b", "-created_at"], name="match_user_b"),
        ]

    def __str__(self) -> str:
        return f"match #{self.pk}: {self.user_a_id} + {self.user_b_id}"

    def partner_of(self, user_id: int) -> int:
        return self.user_b_id if user_id == self.user_a_id else self.user_a_id


class Report(models.Model):
    """A user's complaint about their partner in a match, for admins to review."""

    class Reason(models.TextChoices):
        SPAM = "spam", "Spam or scam"
        HARASSMENT = "harassment", "Harassment or bullying"
        NUDITY = "nudity", "Nudity or sexual content"
        HATE = "hate", "Hate speech"
        VIOLENCE = "violence", "Violence or threats"
        UNDERAGE = "underage", "Appears to be under age"
        OTHER = "other", "Other"

    match = models.ForeignKey(Match, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reports_made"
    )
    reported = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reports_received"
    )
    reason = models.CharField(max_length=20, choices=Reason.choices)
    text = models.TextField(blank=True, max_length=settings.LIMITS["MATCH_REPORT_TEXT_MAX_CHARS"])
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    reviewed = models.BooleanField(default=False)
    # The match's recent signalling metadata when it was reported (``roomlog``: kind, size,
    # time, sender; never SDP or candidates), and the room's last text lines, only if the
    # reporter chose to attach them (null: not attached; the text is otherwise not kept).
    signals = models.JSONField(default=list, blank=True)
    room_lines = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["match", "reporter"], name="one_report_per_match"),
        ]

    def __str__(self) -> str:
        return f"report #{self.pk} ({self.reason}) on {self.reported_id}"
