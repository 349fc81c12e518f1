"""REST endpoints of notifications: channels and mutes, Web Push key and subscriptions."""

from django.conf import settings
from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import NotFound
from core.http import AuthenticatedRequest

from . import selectors, services, vapid


class SettingsIn(serializers.Serializer):
    email = serializers.BooleanField(required=False, help_text="Email digests")
    push = serializers.BooleanField(required=False, help_text="Web Push to my devices")


SettingsOut = inline_serializer(
    "NotificationSettings",
    {
        "email": serializers.BooleanField(),
        "push": serializers.BooleanField(),
        "muted": serializers.ListField(
            child=serializers.IntegerField(), help_text="Muted conversation ids"
        ),
    },
)


class Keys(serializers.Serializer):
    p256dh = serializers.CharField(max_length=200, help_text="base64url, 65 bytes")
    auth = serializers.CharField(max_length=100, help_text="base64url, 16 bytes")


class SubscriptionIn(serializers.Serializer):
    """``PushSubscription.toJSON()`` as the browser gives it (``expirationTime`` ignored)."""

    endpoint = serializers.CharField(max_length=settings.LIMITS["PUSH_ENDPOINT_MAX_CHARS"])
    keys = Keys()


class EndpointIn(serializers.Serializer):
    endpoint = serializers.CharField(max_length=settings.LIMITS["PUSH_ENDPOINT_MAX_CHARS"])


SubscriptionOut = inline_serializer(
    "PushSubscription",
    {
        "id": serializers.IntegerField(),
        "endpoint": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
    },
)
PublicKeyOut = inline_serializer("VapidPublicKey", {"public_key": serializers.CharField()})


def _valid(serializer_class: type[serializers.Serializer], request: AuthenticatedRequest) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class SettingsView(APIView):
    @extend_schema(responses=SettingsOut, summary="My notification channels and mutes")
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response(selectors.settings_get(user_id=request.user.pk))

    @extend_schema(
        request=SettingsIn,
        responses=SettingsOut,
        summary="Turn email / push notifications on or off (both off: none)",
    )
    def patch(self, request: AuthenticatedRequest) -> Response:
        data = _valid(SettingsIn, request)
        return Response(services.settings_update(user_id=request.user.pk, **data))


class MuteView(APIView):
    @extend_schema(request=None, responses=SettingsOut, summary="Mute a conversation")
    def put(self, request: AuthenticatedRequest, conversation_id: int) -> Response:
        return Response(
            services.mute_set(user_id=request.user.pk, conversation_id=conversation_id, muted=True)
        )

    # DELETE answers the settings as they now are, like PUT (drf-spectacular's default for
    # a DELETE is a 204).
    @extend_schema(request=None, responses={200: SettingsOut}, summary="Unmute a conversation")
    def delete(self, request: AuthenticatedRequest, conversation_id: int) -> Response:
        return Response(
            services.mute_set(user_id=request.user.pk, conversation_id=conversation_id, muted=False)
        )


class PublicKeyView(APIView):
    @extend_schema(
        responses=PublicKeyOut,
        summary="The VAPID public key (applicationServerKey of PushManager.subscribe)",
        extensions={"x-errors": ["503"]},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response({"public_key": vapid.public_key()})


class SubscriptionsView(APIView):
    @extend_schema(
        request=SubscriptionIn,
        responses={201: SubscriptionOut},
        summary="Store this browser's push subscription (one per device)",
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = _valid(SubscriptionIn, request)
        sub = services.subscription_save(
            user_id=request.user.pk,
            endpoint=data["endpoint"],
            p256dh=data["keys"]["p256dh"],
            auth=data["keys"]["auth"],
            user_agent=request.headers.get("User-Agent", ""),
        )
        return Response(
            {"id": sub.pk, "endpoint": sub.endpoint, "created_at": sub.created_at},
            status=status.HTTP_201_CREATED,
        )


class UnsubscribeView(APIView):
    @extend_schema(
        request=EndpointIn,
        responses={204: None},
        summary="Forget this browser's push subscription",
        extensions={"x-errors": ["404"]},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = _valid(EndpointIn, request)
        if not services.subscription_delete(user_id=request.user.pk, endpoint=data["endpoint"]):
            raise NotFound("No such subscription.")
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("notifications/settings", SettingsView.as_view(), name="api-notification-settings"),
    path(
        "notifications/mutes/<int:conversation_id>",
        MuteView.as_view(),
        name="api-notification-mute",
    ),
    path("notifications/push/key", PublicKeyView.as_view(), name="api-push-key"),
    path(
        "notifications/push/subscriptions",
        SubscriptionsView.as_view(),
        name="api-push-subscriptions",
    ),
    path("notifications/push/unsubscribe", UnsubscribeView.as_view(), name="api-push-unsubscribe"),
]
