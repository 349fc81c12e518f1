"""The moderator's desk in the admin: act on reports from the queue; the audit log, read-only.

Matching registers the report queue (``matching.admin.ReportAdmin``: reasons, review state,
match histories, the room's record); this app sits above it and replaces that registration
with a subclass that adds the action (a form: what, for how long, why) and each report's
audit entries. Every action goes through ``services.report_act``.
"""

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html_join

from core.errors import ServiceError
from matching.admin import ReportAdmin
from matching.models import Report

from . import services
from .models import Action, AuditEntry, Notice, Restriction

DURATIONS = [
    ("3600", "1 hour"),
    ("86400", "24 hours"),
    ("604800", "7 days"),
    ("2592000", "30 days"),
]


class ActForm(forms.Form):
    # Not "action": the admin's own field of that name says which admin action runs.
    action_choice = forms.ChoiceField(choices=Action.choices, label="Action")
    duration = forms.TypedChoiceField(
        choices=DURATIONS,
        coerce=lambda s: timedelta(seconds=int(s)),
        required=False,
        help_text="For a suspension only.",
    )
    reason = forms.CharField(widget=forms.Textarea, help_text="Why (kept in the audit log).")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("action_choice") != Action.SUSPEND:
            data["duration"] = None
        elif not data.get("duration"):
            self.add_error("duration", "A suspension needs a duration.")
        return data


class _ReadOnly(admin.ModelAdmin):
    """Shown, never added, changed or deleted from the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(_ReadOnly):
    list_display = [
        "created_at", "moderator_username", "action", "target_username", "category", "until",
        "report", "reason",
    ]  # fmt: skip
    list_filter = ["action", "category"]
    search_fields = ["moderator_username", "target_username", "reason"]
    date_hierarchy = "created_at"


@admin.register(Restriction)
class RestrictionAdmin(_ReadOnly):
    list_display = ["user", "until", "category", "entry"]


@admin.register(Notice)
class NoticeAdmin(_ReadOnly):
    list_display = ["user", "created_at", "shown_at", "message"]


admin.site.unregister(Report)


@admin.register(Report)
class ModeratedReportAdmin(ReportAdmin):
    """The report queue, with the moderator's action and the report's audit entries."""

    actions = ["act"]
    readonly_fields = [*ReportAdmin.readonly_fields, "audit_entries"]

    @admin.display(description="Moderation")
    def audit_entries(self, report: Report) -> str:
        rows = report.audit.order_by("created_at")
        if not rows:
            return "No action yet."
        return format_html_join(
            "",
            "<p>{} {}: {} {}{}</p>",
            (
                (
                    e.created_at.strftime("%Y-%m-%d %H:%M"),
                    e.moderator_username,
                    e.action,
                    e.target_username,
                    f" until {e.until:%Y-%m-%d %H:%M} UTC" if e.until else "",
                )
                for e in rows
            ),
        )

    def has_act_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(services.ACT_PERMISSION))

    @admin.action(description="Act on the selected reports…", permissions=["act"])
    def act(self, request: HttpRequest, queryset: QuerySet[Report]) -> TemplateResponse | None:
        form = ActForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            done = 0
            for report in queryset:
                try:
                    services.report_act(
                        moderator=request.user,  # type: ignore[arg-type]
                        report_id=report.pk,
                        action=form.cleaned_data["action_choice"],
                        reason=form.cleaned_data["reason"],
                        duration=form.cleaned_data["duration"],
                    )
                    done += 1
                except ServiceError as exc:
                    self.message_user(
                        request, f"Report #{report.pk}: {exc.message}", messages.ERROR
                    )
            if done:
                what = form.cleaned_data["action_choice"]
                self.message_user(request, f"{what}: {done} report(s).")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Act on reports",
            "reports": queryset,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/moderation/act.html", context)
