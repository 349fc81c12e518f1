from django.contrib import admin

from .models import Conversation, Membership, Message


class MembershipInline(admin.TabularInline):
    model = Membership
    raw_id_fields = ["user", "invited_by"]
    extra = 0


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "title", "last_seq", "last_message_at", "created_at"]
    list_filter = ["kind"]
    search_fields = ["title"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    # A state changed here skips the services (no push, no presence): prefer accept/decline.
    list_display = ["conversation", "user", "role", "state", "last_read_seq", "joined_at"]
    list_filter = ["state", "role"]
    raw_id_fields = ["conversation", "user", "invited_by"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["conversation", "seq", "sender", "created_at", "edited_at", "deleted_at"]
    raw_id_fields = ["conversation", "sender"]
    search_fields = ["body"]
