"""Reads for authentication at WebSocket connect."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from rest_framework.authtoken.models import Token

from core.redis import abus, key

User = get_user_model()


def user_by_token(*, token: str) -> AbstractBaseUser | None:
    """Return the active user owning an API token, or None."""
    row = Token.objects.select_related("user").filter(key=token).first()
    return row.user if row and row.user.is_active else None


async def aws_ticket_redeem(*, ticket: str) -> tuple[int, str | None] | None:
    """Consume a one-time ticket; return its user id and the credential it was issued to.

    None if unknown or used. The credential (a ``core.router.credential_id``) is None for a
    ticket issued without one.
    """
    if not ticket or len(ticket) > 100:
        return None
    # GETDEL (Redis >= 6.2) makes the ticket single-use even when two sockets race.
    value = await abus().execute_command("GETDEL", key("wsticket", ticket))
    if not value:
        return None
    user_id, _, credential = str(value).partition(" ")
    return int(user_id), credential or None


def user_active(*, user_id: int) -> AbstractBaseUser | None:
    """Return the active user with this id, or None."""
    return User.objects.filter(pk=user_id, is_active=True).first()
