"""Writes to accounts: sign-up, API tokens and WebSocket tickets."""

import secrets
from typing import cast

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.validators import ASCIIUsernameValidator
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token

from core.errors import CLOSE_CREDENTIALS_REVOKED
from core.events import send_event, user_group
from core.redis import abus, bus, key
from profiles.models import Profile

from .selectors import RedeemedTicket

User = get_user_model()
USERNAME_MAX = 150
# What a username may contain, shown to people signing up (the form, the API schema).
USERNAME_HELP = (
    "Up to 150 characters: letters A-Z and a-z, digits and @ . + - _ only. "
    "Your display name can be written in any script."
)


def user_signup(*, username: object, password: object, email: object = "") -> AbstractBaseUser:
    """Create a user and their empty profile, or raise ``ValidationError`` by field."""
    errors: dict[str, str] = {}
    if not isinstance(username, str) or not username.strip():
        errors["username"] = "Enter a username."
    else:
        username = username.strip()
        try:
            # ASCII only, case-insensitively unique: a Cyrillic "\u0430" beside a Latin "a"
            # made a second "auditstaff" that looks the same (Hardening, item 12). The
            # display name carries any script; the username is the unambiguous handle.
            ASCIIUsernameValidator()(username)
        except ValidationError as exc:
            errors["username"] = exc.messages[0]
        if len(username) > USERNAME_MAX:
            errors["username"] = f"At most {USERNAME_MAX} characters."
        elif User.objects.filter(username__iexact=username).exists():
            errors["username"] = "That username is taken."
    if not isinstance(email, str):
        errors["email"] = "Enter an email address or leave it out."
    if not isinstance(password, str) or not password:
        errors["password"] = "Enter a password."
    elif "username" not in errors:
        # No username error: ``username`` is a string by now. A non-string ``email`` is an
        # error already, and the similarity validator skips attributes that are not strings.
        candidate = User(
            username=cast(str, username), email=email if isinstance(email, str) else ""
        )
        try:
            password_validation.validate_password(password, candidate)
        except ValidationError as exc:
            errors["password"] = " ".join(exc.messages)
    if errors:
        raise ValidationError(errors)
    # No errors: the checks above found all three to be strings.
    username, password, email = cast(str, username), cast(str, password), cast(str, email)
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, password=password, email=email)
            Profile.objects.ensure(user=user)
    except IntegrityError as exc:  # a concurrent sign-up took the name first
        raise ValidationError({"username": "That username is taken."}) from exc
    return user


def token_issue(*, user: AbstractBaseUser) -> str:
    """Return the user's API token, creating one if they have none."""
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def token_revoke(*, user: AbstractBaseUser) -> None:
    """Revoke the user's API token; the next ``token_issue`` makes a new one."""
    # django-stubs types the lookup as the configured user model, not as AbstractBaseUser.
    Token.objects.filter(user=user).delete()  # type: ignore[misc]


def ws_ticket_issue(*, user: AbstractBaseUser, credential: str | None = None) -> str:
    """Return a one-time WebSocket ticket for ``user``, valid for a few seconds.

    ``credential``: the ``core.router.credential_id`` of the session or token that asked
    for it; the socket is closed when that credential is revoked.
    """
    ticket = secrets.token_urlsafe(32)
    value = f"{user.pk} {credential}" if credential else str(user.pk)
    name = key("wsticket", ticket)
    bus(name).set(name, value, ex=settings.LIMITS["WS_TICKET_TTL_SECONDS"])
    return ticket


def sockets_close(
    *,
    user_id: int,
    reason: str,
    credential: str | None = None,
    code: int = CLOSE_CREDENTIALS_REVOKED,
) -> None:
    """Close the user's sockets opened with ``credential`` (None: all of them), everywhere.

    One event to the user's group once the transaction commits; every server process
    closes its matching sockets with ``code`` (docs/protocol.md): 4440 with ``reason``
    ``logout``, ``password_changed`` or ``token_revoked``, sent as the close reason; 4451
    for a suspension or ban (``Restriction.close_reason``).
    """
    send_event(
        event="auth.revoked",
        data={"reason": reason, "credential": credential, "code": code},
        groups=[user_group(user_id)],
    )


async def aws_ticket_give_back(*, ticket: str, redeemed: "RedeemedTicket") -> None:
    """Make a redeemed ticket valid again for the rest of its life (its socket failed to open).

    NX: never overwrite; the ticket was deleted by its redemption, so nothing else can have
    set it since.
    """
    name = key("wsticket", ticket)
    await abus(name).set(name, redeemed.value, px=redeemed.ttl_ms, nx=True)
