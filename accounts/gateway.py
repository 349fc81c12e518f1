"""How a WebSocket's ticket or API token finds its user (registered with the gateway)."""

from django.contrib.auth.models import AbstractBaseUser

from core.db import db
from core.router import authenticator

from .selectors import aws_ticket_redeem, user_active, user_by_token


@authenticator("ticket")
async def ticket_user(ticket: str) -> AbstractBaseUser | None:
    """Consume a one-time ticket (``POST /api/auth/ws-ticket``); return its active user."""
    user_id = await aws_ticket_redeem(ticket=ticket)
    return None if user_id is None else await db(user_active)(user_id=user_id)


@authenticator("token")
async def token_user(token: str) -> AbstractBaseUser | None:
    """Return the active owner of an API token (``Authorization: Token <key>``)."""
    return await db(user_by_token)(token=token)
