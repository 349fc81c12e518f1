"""REST endpoints of presence, read receipts and unread counts."""

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import json_object
from core.errors import Invalid
from core.http import AuthenticatedRequest
from profiles.api import PublicProfile
from profiles.api import PublicProfileView as ProfilesPublicProfileView

from . import receipts, selectors
from .handlers import user_ids_parse


class Read(serializers.Serializer):
    seq = serializers.IntegerField(
        min_value=0, help_text="Read up to here; past the last seq is clamped."
    )


PresenceOut = inline_serializer(
    "Presence",
    {
        "user_id": serializers.IntegerField(),
        "online": serializers.BooleanField(),
        "last_seen": serializers.DateTimeField(allow_null=True),
    },
    many=True,
)


class PresenceView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("user_ids", str, description="Comma-separated, at most 200")],
        responses=PresenceOut,
        summary="Presence of my contacts (others are left out)",
        description="Contacts share a conversation in which both memberships are accepted, "
        "and neither blocked the other (docs/subsystems/presence.md).",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        raw = request.query_params.get("user_ids", "")
        try:
            ids = [int(part) for part in raw.split(",") if part.strip()]
        except ValueError:
            raise Invalid("user_ids must be comma-separated integers.") from None
        user_ids = user_ids_parse(ids)
        visible = selectors.visible_user_ids(user_id=request.user.pk, user_ids=user_ids)
        return Response(
            selectors.presence_get(user_ids=[uid for uid in user_ids if uid in visible])
        )


class PublicProfileView(ProfilesPublicProfileView):
    """A user's public profile, with ``last_seen`` for their contacts only.

    Served from here, not from profiles: who may see ``last_seen`` depends on conversations
    and blocks, which sit above profiles (docs/architecture.md). The cached profile is the
    same for every reader; ``last_seen`` is taken out of it per reader.
    """

    @extend_schema(
        responses=PublicProfile,
        summary="Read a user's public profile (last_seen: contacts only, else null)",
        extensions={"x-errors": ["429"]},
    )
    def get(self, request: AuthenticatedRequest, user_id: int) -> Response:  # type: ignore[override]
        public = self.public_get(user_id)
        if not selectors.visible_user_ids(user_id=request.user.pk, user_ids=[user_id]):
            public = {**public, "last_seen": None}
        return Response(public)


ReadMarkers = inline_serializer(
    "ReadMarkers",
    {
        "conversation_id": serializers.IntegerField(),
        "last_seq": serializers.IntegerField(),
        "markers": serializers.ListField(child=serializers.DictField()),
    },
)
ReadResult = inline_serializer(
    "ReadResult",
    {
        "conversation_id": serializers.IntegerField(),
        "seq": serializers.IntegerField(),
        "moved": serializers.BooleanField(),
    },
)
UnreadSummary = inline_serializer(
    "UnreadSummary",
    {
        "total": serializers.IntegerField(),
        "conversations": serializers.ListField(child=serializers.DictField()),
    },
)


class ReadView(APIView):
    @extend_schema(
        responses=ReadMarkers, summary="Every member's read marker (who has read up to where)"
    )
    def get(self, request: AuthenticatedRequest, conversation_id: int) -> Response:
        return Response(
            selectors.read_markers(user_id=request.user.pk, conversation_id=conversation_id)
        )

    @extend_schema(
        request=Read, responses=ReadResult, summary="Mark read up to seq (forward only, clamped)"
    )
    def post(self, request: AuthenticatedRequest, conversation_id: int) -> Response:
        data = json_object(request)
        return Response(
            receipts.read_mark(
                user_id=request.user.pk, conversation_id=conversation_id, seq=data.get("seq")
            )
        )


class UnreadView(APIView):
    @extend_schema(
        responses=UnreadSummary,
        summary="My total unread count and the conversations with unread messages",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response(selectors.unread_summary(user_id=request.user.pk))


urlpatterns = [
    path("presence", PresenceView.as_view(), name="api-presence"),
    path("conversations/<int:conversation_id>/read", ReadView.as_view(), name="api-read"),
    path("unread", UnreadView.as_view(), name="api-unread"),
]
