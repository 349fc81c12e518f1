"""REST endpoints for accounts: sign-up, tokens, WebSocket tickets, session login."""

from typing import Any

from django.contrib.auth import authenticate, login, logout
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.http import AuthenticatedRequest
from core.router import credential_id

from . import services
from .restrictions import user_unrestricted_check


class Credentials(serializers.Serializer):
    username = serializers.CharField(min_length=1, max_length=150)
    password = serializers.CharField(min_length=1, max_length=4096, trim_whitespace=False)


class SignupSerializer(Credentials):
    username = serializers.CharField(min_length=1, max_length=150, help_text=services.USERNAME_HELP)
    email = serializers.EmailField(required=False, allow_blank=True)


TokenOut = inline_serializer("Token", {"token": serializers.CharField()})
UserOut = inline_serializer(
    "SignedUp",
    {
        "user_id": serializers.IntegerField(),
        "username": serializers.CharField(),
        "token": serializers.CharField(),
    },
)


def _body(request: Request, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ValidationError({"non_field_errors": "Send a JSON object."})
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class SignupView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_scope = "signup"

    @extend_schema(
        request=SignupSerializer,
        responses={201: UserOut},
        summary="Sign up",
        extensions={"x-errors": ["429"]},
    )
    def post(self, request: Request) -> Response:
        data = _body(request, SignupSerializer)
        try:
            user = services.user_signup(**data)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from exc
        token = services.token_issue(user=user)
        return Response(
            {"user_id": user.pk, "username": user.get_username(), "token": token},
            status=status.HTTP_201_CREATED,
        )


# Log-ins (here and SessionView.post): throttled per address (THROTTLE_RATES["login"], POST
# only), and django-axes locks out an account and address after repeated failures
# (accounts/lockout.py). They pass Django's request to ``authenticate`` so axes can flag it
# (its middleware then answers 429).
class TokenView(APIView):
    permission_classes = [AllowAny]
    throttle_scope = "login"
    throttle_methods = ("POST",)
    throttle_per_address = True

    @extend_schema(
        request=Credentials,
        responses=TokenOut,
        summary="Trade credentials for a token",
        # 401: wrong username or password; 403: the account is suspended or banned
        extensions={"x-errors": ["401", "403", "429"]},
    )
    def post(self, request: Request) -> Response:
        data = _body(request, Credentials)
        user = authenticate(request._request, username=data["username"], password=data["password"])
        if user is None:
            raise AuthenticationFailed("Wrong username or password.")
        user_unrestricted_check(user_id=user.pk)  # suspended or banned: 403 ``suspended``
        return Response({"token": services.token_issue(user=user)})

    @extend_schema(
        request=None,
        responses={204: None},
        summary="Revoke my token",
        extensions={"x-errors": ["401"]},  # not signed in
    )
    def delete(self, request: Request) -> Response:
        if not request.user.is_authenticated:
            raise AuthenticationFailed("Sign in first.")
        services.token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _credential(request: Request) -> str | None:
    """The ``credential_id`` a request was authenticated with: its token, or its session."""
    if isinstance(request.auth, Token):
        return credential_id("token", request.auth.key)
    session_key = request._request.session.session_key
    return credential_id("session", session_key) if session_key else None


class WsTicketView(APIView):
    throttle_scope = "ws_ticket"

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "WsTicket",
            {"ticket": serializers.CharField(), "expires_in": serializers.IntegerField()},
        ),
        summary="Get a one-time WebSocket ticket (valid 30 s)",
        extensions={"x-errors": ["429"]},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        from django.conf import settings

        ticket = services.ws_ticket_issue(user=request.user, credential=_credential(request))
        return Response({"ticket": ticket, "expires_in": settings.LIMITS["WS_TICKET_TTL_SECONDS"]})


@method_decorator(ensure_csrf_cookie, name="get")
class SessionView(APIView):
    """Session login for browser scripts: GET sets the CSRF cookie, POST logs in."""

    permission_classes = [AllowAny]
    throttle_scope = "login"
    throttle_methods = ("POST",)
    throttle_per_address = True

    @extend_schema(
        responses=inline_serializer(
            "Session",
            {
                "authenticated": serializers.BooleanField(),
                "user_id": serializers.IntegerField(allow_null=True),
            },
        ),
        summary="Who am I (and set the CSRF cookie)",
    )
    def get(self, request: Request) -> Response:
        user = request.user
        return Response(
            {
                "authenticated": user.is_authenticated,
                "user_id": user.pk if user.is_authenticated else None,
            }
        )

    @extend_schema(
        request=Credentials,
        responses={204: None},
        summary="Log in (session; send the csrftoken cookie's value as X-CSRFToken)",
        extensions={"x-errors": ["401", "403", "429"]},  # wrong password; no CSRF token
    )
    def post(self, request: Request) -> Response:
        # DRF checks CSRF only for requests already logged in; a login form posted from
        # another site would otherwise sign the visitor into the attacker's account.
        SessionAuthentication().enforce_csrf(request)
        data = _body(request, Credentials)
        user = authenticate(request._request, username=data["username"], password=data["password"])
        if user is None:
            raise AuthenticationFailed("Wrong username or password.")
        user_unrestricted_check(user_id=user.pk)
        login(request._request, user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={204: None}, summary="Log out (session)")
    def delete(self, request: Request) -> Response:
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)
