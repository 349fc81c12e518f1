from django.contrib import admin

from .models import Interest, Profile


@admin.register(Interest)
class InterestAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "display_name", "language", "region", "last_seen"]
    list_filter = ["language", "region"]
    search_fields = ["user__username", "display_name"]
    filter_horizontal = ["interests"]
    raw_id_fields = ["user"]
