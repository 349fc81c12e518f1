"""REST endpoints of Meet: enter / leave the pool, my current match, ICE servers, trending,
block, report."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import json_object
from core.errors import Invalid, ServiceError
from core.http import AuthenticatedRequest
from profiles.interests import interest_normalize

from . import selectors, services


class EnterIn(serializers.Serializer):
    interests = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Default: my profile's."
    )
    region = serializers.ChoiceField(["prefer", "require", "any"], required=False)


NextStepOut = inline_serializer(
    "MatchNextStep",
    {
        "step": serializers.IntegerField(),
        "drops": serializers.ChoiceField(["interests", "region"]),
        "at": serializers.DateTimeField(),
        "in_seconds": serializers.FloatField(),
    },
    allow_null=True,
    required=False,
)

WaitingOut = inline_serializer(
    "MatchWaiting",
    {
        "waiting": serializers.BooleanField(),
        "language": serializers.CharField(required=False),
        "region": serializers.CharField(required=False, help_text='"" = none'),
        # A CharField: the same choices as EnterIn's "region" would make a second enum.
        "region_mode": serializers.CharField(required=False, help_text="prefer, require or any"),
        "same_region": serializers.BooleanField(required=False),
        "interests": serializers.ListField(child=serializers.CharField(), required=False),
        "step": serializers.IntegerField(required=False),
        "others_waiting": serializers.IntegerField(
            required=False, help_text="Others waiting in my language (and region, if kept)."
        ),
        "next_step": NextStepOut,
        "recent_partners": serializers.IntegerField(required=False),
        "recent_partner_seconds": serializers.IntegerField(),
        "waited_seconds": serializers.FloatField(required=False),
        "refresh_seconds": serializers.IntegerField(required=False),
    },
    allow_null=True,
)

EnterOut = inline_serializer(
    "MatchEnter",
    {
        "status": serializers.ChoiceField(["matched", "waiting"]),
        "match_id": serializers.IntegerField(allow_null=True),
        "step": serializers.IntegerField(allow_null=True),
        "interests": serializers.ListField(child=serializers.CharField()),
        "ignored_interests": serializers.ListField(child=serializers.CharField()),
        "refresh_seconds": serializers.IntegerField(),
        "search": WaitingOut,
    },
)


class QueueView(APIView):
    @extend_schema(
        request=EnterIn,
        responses={200: EnterOut},
        summary="Enter the matching pool (rate limited: X-RateLimit-* headers, 429)",
        extensions={"x-errors": ["409", "429", "503"]},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        headers = services.match_rate_check(user_id=request.user.pk).headers()
        try:
            data = json_object(request)
            options = {}
            if "interests" in data:
                options["interests"] = data["interests"]
            if "region" in data:
                options["region_mode"] = data["region"]
            result = services.match_enter(user_id=request.user.pk, **options)
        except ServiceError as exc:  # the rate headers travel with any error
            exc.headers = {**headers, **exc.headers}
            raise
        return Response(result, headers=headers)

    @extend_schema(
        responses={200: WaitingOut},
        summary="My waiting ticket: what it searches for, who could match, when it widens",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response(selectors.waiting_status(user_id=request.user.pk))

    @extend_schema(
        request=None,
        responses={200: inline_serializer("MatchCancel", {"removed": serializers.BooleanField()})},
        summary="Leave the matching pool",
    )
    def delete(self, request: AuthenticatedRequest) -> Response:
        return Response({"removed": services.match_cancel(user_id=request.user.pk)})


MatchOut = inline_serializer(
    "CurrentMatch",
    {
        "match": inline_serializer(
            "MatchView",
            {
                "match_id": serializers.IntegerField(),
                "partner": serializers.DictField(help_text="The partner's public profile."),
                "shared_interests": serializers.ListField(child=serializers.CharField()),
                "initiator": serializers.BooleanField(help_text="I make the first offer."),
                "created_at": serializers.DateTimeField(),
            },
            allow_null=True,
        )
    },
)


class CurrentMatchView(APIView):
    @extend_schema(
        responses={200: MatchOut},
        summary="My open match (null when none): a reload or another tab goes back to it",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response(services.match_current(user_id=request.user.pk))


class IceServersView(APIView):
    @extend_schema(
        responses=inline_serializer(
            "IceServers",
            {
                "ice_servers": serializers.ListField(child=serializers.DictField()),
                "ttl": serializers.IntegerField(),
            },
        ),
        summary="ICE servers for WebRTC (STUN; TURN with time-limited credentials)",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response(selectors.ice_servers(user_id=request.user.pk))


_TRENDING_ROW = inline_serializer(
    "TrendingInterest",
    {
        "interest": serializers.CharField(),
        "score": serializers.IntegerField(),
        "rank": serializers.IntegerField(allow_null=True),
    },
)


def _trending_row(many: bool = False) -> serializers.Serializer:
    # One serializer class for both endpoints: drf-spectacular names components by class.
    return _TRENDING_ROW.__class__(many=True) if many else _TRENDING_ROW


class TrendingView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": settings.LIMITS["TRENDING_TOP_MAX"]},
                description="1 to 100, default 10.",
            )
        ],
        responses=_trending_row(many=True),
        summary="Today's most shared interests in matches (UTC day)",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        raw = request.query_params.get("limit", "10")
        top = settings.LIMITS["TRENDING_TOP_MAX"]
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= top:
            raise Invalid(f"limit must be an integer from 1 to {top}.")
        return Response(selectors.trending_top(limit=limit))


class TrendingRankView(APIView):
    @extend_schema(responses=_trending_row(), summary="One interest's rank and score today")
    def get(self, request: AuthenticatedRequest, interest: str) -> Response:
        try:
            slug, _ = interest_normalize(text=interest)
        except ValidationError:
            raise Invalid("That is not an interest.") from None
        return Response(selectors.trending_rank(interest=slug))


class BlockIn(serializers.Serializer):
    match_id = serializers.IntegerField(required=False)
    user_id = serializers.IntegerField(required=False)


BlockedOut = inline_serializer(
    "BlockedUser",
    {
        "user_id": serializers.IntegerField(),
        "username": serializers.CharField(),
        "display_name": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "match_id": serializers.IntegerField(allow_null=True),
    },
)


class BlocksView(APIView):
    @extend_schema(
        responses={200: inline_serializer("Blocks", {"blocks": BlockedOut.__class__(many=True)})},
        summary="The people I blocked, newest first (at most 500)",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response({"blocks": selectors.blocks_list(user_id=request.user.pk)})

    @extend_schema(
        request=BlockIn,
        responses={
            201: inline_serializer("Block", {"blocked_user_id": serializers.IntegerField()})
        },
        summary="Block my partner in a match, or a user: never matched again, no messages",
        extensions={"x-errors": ["404"]},  # no such match or user
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = json_object(request)
        block = services.block_create(
            user_id=request.user.pk, match_id=data.get("match_id"), blocked_id=data.get("user_id")
        )
        return Response({"blocked_user_id": block.blocked_id}, status=status.HTTP_201_CREATED)


class BlockView(APIView):
    @extend_schema(
        request=None,
        responses={204: None},
        summary="Unblock: take back my block on this user (matched and messaged again)",
        extensions={"x-errors": ["404"]},  # no block of mine on this user
    )
    def delete(self, request: AuthenticatedRequest, user_id: int) -> Response:
        services.block_remove(user_id=request.user.pk, blocked_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReportIn(serializers.Serializer):
    match_id = serializers.IntegerField()
    reason = serializers.ChoiceField(
        ["spam", "harassment", "nudity", "hate", "violence", "underage", "other"]
    )
    text = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=settings.LIMITS["MATCH_REPORT_TEXT_MAX_CHARS"],
        help_text="Up to 1000 characters.",
    )
    attach_lines = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Attach the room's last text lines (kept for 5 minutes after the match).",
    )


class ReportsView(APIView):
    @extend_schema(
        request=ReportIn,
        responses={201: inline_serializer("Report", {"report_id": serializers.IntegerField()})},
        summary="Report my partner in a match",
        extensions={"x-errors": ["404", "409"]},  # no such match; reported already
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = json_object(request)
        report = services.report_create(
            user_id=request.user.pk,
            match_id=data.get("match_id"),
            reason=data.get("reason"),
            text=data.get("text", ""),
            attach_lines=data.get("attach_lines", False),
        )
        return Response({"report_id": report.pk}, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("meet/queue", QueueView.as_view(), name="api-meet-queue"),
    path("meet/current", CurrentMatchView.as_view(), name="api-meet-current"),
    path("meet/ice-servers", IceServersView.as_view(), name="api-meet-ice"),
    path("meet/trending", TrendingView.as_view(), name="api-meet-trending"),
    path("meet/trending/<str:interest>", TrendingRankView.as_view(), name="api-meet-trending-rank"),
    path("meet/blocks", BlocksView.as_view(), name="api-meet-blocks"),
    path("meet/blocks/<int:user_id>", BlockView.as_view(), name="api-meet-block"),
    path("meet/reports", ReportsView.as_view(), name="api-meet-reports"),
]
