"""REST endpoints for profiles and interests."""

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.http import AuthenticatedRequest

from . import selectors, services
from .choices import LANGUAGE_CODES, REGIONS

PublicProfile = inline_serializer(
    "PublicProfile",
    {
        "user_id": serializers.IntegerField(),
        "username": serializers.CharField(),
        "display_name": serializers.CharField(),
        "language": serializers.CharField(),
        "region": serializers.CharField(),
        "interests": serializers.ListField(child=serializers.CharField()),
        "last_seen": serializers.DateTimeField(allow_null=True),
    },
)


class ProfileUpdateSerializer(serializers.Serializer):
    """The schema of ``PATCH /api/profile``; ``profiles.services.profile_update`` validates."""

    display_name = serializers.CharField(
        required=False, max_length=settings.LIMITS["DISPLAY_NAME_MAX_LENGTH"],
        help_text="1 to 60 characters, not only spaces.",
    )  # fmt: skip
    language = serializers.ChoiceField(
        sorted(LANGUAGE_CODES), required=False, help_text="ISO 639-1 code, e.g. 'en'."
    )
    region = serializers.ChoiceField(
        ["", *sorted(REGIONS)], required=False, allow_null=True, help_text="'' (or null): none."
    )
    interests = serializers.ListField(
        child=serializers.CharField(max_length=settings.LIMITS["INTEREST_MAX_LENGTH"]),
        required=False,
        max_length=settings.LIMITS["INTERESTS_PER_USER"],
        help_text="Up to 20 interests; replaces the current list.",
    )


class ProfileMeView(APIView):
    @extend_schema(responses=PublicProfile, summary="Read my profile")
    def get(self, request: AuthenticatedRequest) -> Response:
        profile = selectors.profile_get(user_id=request.user.pk)
        assert profile is not None  # a signed-in user is an active one
        return Response(selectors.profile_public(profile=profile, with_last_seen=True))

    @extend_schema(
        request=ProfileUpdateSerializer,
        responses=PublicProfile,
        summary="Update it",
        extensions={"x-closed-body": True},  # a field it does not know is a 400
    )
    def patch(self, request: AuthenticatedRequest) -> Response:
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": "Send a JSON object."})
        allowed = set(ProfileUpdateSerializer().fields)
        unknown = set(request.data) - allowed
        if unknown:
            raise ValidationError({f: "Unknown field." for f in sorted(unknown)})
        try:
            services.profile_update(user=request.user, **request.data)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from exc
        profile = selectors.profile_get(user_id=request.user.pk)
        assert profile is not None  # a signed-in user is an active one
        return Response(selectors.profile_public(profile=profile, with_last_seen=True))


class PublicProfileView(APIView):
    # Per user (settings.THROTTLE_RATES): reading every profile by id is enumeration.
    throttle_scope = "profile_read"

    @extend_schema(
        responses=PublicProfile,
        summary="Read a user's public profile",
        extensions={"x-errors": ["429"]},
    )
    def get(self, request: Request, user_id: int) -> Response:
        # last_seen is for contacts only, which profiles cannot tell (they are conversations'):
        # presence.api.PublicProfileView serves this URL and puts it back for them.
        return Response({**self.public_get(user_id), "last_seen": None})

    @staticmethod
    def public_get(user_id: int) -> dict:
        public = selectors.profile_public_get(user_id=user_id)
        if public is None:
            raise NotFound("No such user.")
        return public


class InterestListView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("q", str, description="Prefix to search for.")],
        responses=inline_serializer(
            "Interest",
            {
                "slug": serializers.CharField(),
                "name": serializers.CharField(),
                "popularity": serializers.IntegerField(),
            },
            many=True,
        ),
        summary="List interests, or those starting with a prefix",
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.interest_search_public(prefix=request.query_params.get("q", "")))
