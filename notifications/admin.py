from django.contrib import admin

from .models import Absence, Mute, NotificationSettings, PushSubscription


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(admin.ModelAdmin):
    list_display = ["user", "email", "push", "updated_at"]
    list_filter = ["email", "push"]
    raw_id_fields = ["user"]


@admin.register(Mute)
class MuteAdmin(admin.ModelAdmin):
    list_display = ["user", "conversation", "created_at"]
    raw_id_fields = ["user", "conversation"]


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "user_agent", "created_at", "last_success_at"]
    raw_id_fields = ["user"]
    # The keys let anyone push to the device: shown to nobody.
    exclude = ["p256dh", "auth"]
    readonly_fields = ["endpoint", "user_agent", "created_at", "last_success_at"]


@admin.register(Absence)
class AbsenceAdmin(admin.ModelAdmin):
    """The notified absences: who was told, when, by which channels (read-only)."""

    list_display = ["user", "away_since", "notified_at", "messages", "emailed", "pushed"]
    raw_id_fields = ["user"]
    readonly_fields = ["user", "away_since", "notified_at", "messages", "emailed", "pushed"]
