"""JSON endpoints for the browser pages: finding people to start a conversation with."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import Invalid
from core.http import AuthenticatedRequest
from core.text import text_storable

from . import selectors


class UserSearchView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("q", str, description="Username or display name prefix")],
        responses=inline_serializer(
            "UserHit",
            {
                "user_id": serializers.IntegerField(),
                "username": serializers.CharField(),
                "display_name": serializers.CharField(),
            },
            many=True,
        ),
        summary="Find users by username or display name prefix (not me)",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        q = request.query_params.get("q", "")[:150]
        if not text_storable(q):  # PostgreSQL refuses NUL even in a LIKE pattern
            raise Invalid("q must be plain text.")
        return Response(selectors.user_search(user_id=request.user.pk, prefix=q))
