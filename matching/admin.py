from datetime import UTC, datetime

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from . import selectors
from .models import Match, Report


class ReportInline(admin.TabularInline):
    model = Report
    raw_id_fields = ["reporter", "reported"]
    readonly_fields = ["created_at"]
    extra = 0


@admin.register(Match)
class MatchAdmin(admin.ModelAdmin):
    list_display = ["id", "user_a", "user_b", "created_at", "ended_at", "end_reason"]
    list_filter = ["end_reason"]
    search_fields = ["user_a__username", "user_b__username"]
    raw_id_fields = ["user_a", "user_b", "ended_by"]
    date_hierarchy = "created_at"
    inlines = [ReportInline]


def _history_table(user_id: int) -> str:
    rows = selectors.match_history(user_id=user_id)
    if not rows:
        return "No matches."
    body = format_html_join(
        "",
        "<tr><td>#{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                m.pk,
                m.user_b if m.user_a_id == user_id else m.user_a,
                m.created_at.strftime("%Y-%m-%d %H:%M"),
                m.ended_at.strftime("%Y-%m-%d %H:%M") if m.ended_at else "open",
                m.end_reason or "-",
                ", ".join(r.reason for r in m.reports.all()) or "-",
            )
            for m in rows
        ),
    )
    return format_html(
        "<table><tr><th>match</th><th>partner</th><th>started</th><th>ended</th>"
        "<th>end</th><th>reports</th></tr>{}</table>",
        body,
    )


def _ms(at: int) -> str:
    return datetime.fromtimestamp(at / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]


def _who(report: Report, user_id: int) -> str:
    return "reported" if user_id == report.reported_id else "reporter"


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    """Reports with the reported user's match history, newest first, for review; the
    room's signalling metadata, and its last lines when the reporter attached them."""

    list_display = ["id", "created_at", "reason", "reporter", "reported", "match", "reviewed"]
    list_filter = ["reason", "reviewed"]
    list_editable = ["reviewed"]
    search_fields = ["reporter__username", "reported__username", "text"]
    raw_id_fields = ["match", "reporter", "reported"]
    readonly_fields = [
        "created_at", "reported_history", "reporter_history", "signal_log", "attached_lines",
    ]  # fmt: skip
    exclude = ["signals", "room_lines"]

    @admin.display(description="Signalling (UTC time, from, kind, characters; no content)")
    def signal_log(self, report: Report) -> str:
        if not report.signals:
            return "None recorded."
        return format_html_join(
            "",
            "<div>{} {} {} {}</div>",
            ((_ms(s["at"]), _who(report, s["from"]), s["kind"], s["size"]) for s in report.signals),
        )

    @admin.display(description="The room's last lines (attached by the reporter)")
    def attached_lines(self, report: Report) -> str:
        if report.room_lines is None:
            return "Not attached."
        if not report.room_lines:
            return "Attached, but the room had no lines left."
        return format_html_join(
            "",
            "<div>{} <strong>{}</strong>: {}</div>",
            (
                (_ms(line["at"]), _who(report, line["from"]), line["text"])
                for line in report.room_lines
            ),
        )

    @admin.display(description="Match history of the reported user")
    def reported_history(self, report: Report) -> str:
        return _history_table(report.reported_id)

    @admin.display(description="Match history of the reporter")
    def reporter_history(self, report: Report) -> str:
        return _history_table(report.reporter_id)
