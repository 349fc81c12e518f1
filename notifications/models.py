"""What notifications keep in PostgreSQL: per-user settings, per-conversation mutes, Web Push
subscriptions per device, and one row per absence that was notified (the "once" of "told
once per absence")."""

from django.conf import settings
from django.db import models

from conversations.models import Conversation


class NotificationSettings(models.Model):
    """How a user wants to hear about messages that came while they were away.

    No row means the defaults (email and push on). Both off is "none".
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_settings"
    )
    email = models.BooleanField(default=True)
    push = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"notifications of user {self.user_id}: email={self.email} push={self.push}"


class Mute(models.Model):
    """A conversation whose messages never make a notification for this user."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "conversation"], name="one_mute"),
        ]

    def __str__(self) -> str:
        return f"user {self.user_id} muted conversation {self.conversation_id}"


class PushSubscription(models.Model):
    """One browser's (device's) Web Push subscription (the PushSubscription's JSON)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions"
    )
    # The push service's URL for this subscription: unique, a browser re-subscribing
    # replaces its own row (possibly moving it to the user now signed in).
    endpoint = models.TextField(unique=True)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"], name="push_sub_user")]

    def __str__(self) -> str:
        return f"push subscription {self.pk} of user {self.user_id}"


class Absence(models.Model):
    """An absence that was notified: the user was away since ``away_since``.

    Inserting the row is the claim: the unique constraint lets exactly one worker send the
    notification of one absence, however many scans and retries race. A new absence (the
    user came back, so ``Profile.last_seen`` moved past ``notified_at``) is a new row.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    away_since = models.DateTimeField()
    notified_at = models.DateTimeField(auto_now_add=True)
    messages = models.IntegerField(default=0)
    emailed = models.BooleanField(default=False)
    pushed = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "away_since"], name="one_notice_per_absence"),
        ]
        indexes = [models.Index(fields=["user", "-notified_at"], name="absence_latest")]

    def __str__(self) -> str:
        return f"user {self.user_id} away since {self.away_since:%Y-%m-%d %H:%M:%S}"
