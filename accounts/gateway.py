"""Accounts on the WebSocket gateway: how a ticket or API token finds its user, and the
event hook that closes the sockets whose credentials were revoked (issue: Hardening, 11)."""

from typing import Any

from core.errors import CLOSE_CREDENTIALS_REVOKED
from core.router import Authenticated, Connection, authenticator, credential_id, event_hook

from .selectors import auser_active, auser_by_token, aws_ticket_redeem
from .services import aws_ticket_give_back


@authenticator("ticket")
async def ticket_user(ticket: str) -> Authenticated | None:
    """Consume a one-time ticket (``POST /api/auth/ws-ticket``); return its active user.

    The socket answers to the credential the ticket was issued to: logging out that session
    or revoking that token closes it too. A connect that fails after the redemption
    (PostgreSQL away for the user's row, or a connect hook) gives the ticket back: a failure
    must not use up the client's ticket.
    """
    redeemed = await aws_ticket_redeem(ticket=ticket)
    if redeemed is None:
        return None

    async def give_back() -> None:
        await aws_ticket_give_back(ticket=ticket, redeemed=redeemed)

    try:
        user = await auser_active(user_id=redeemed.user_id)
    except Exception:
        await give_back()
        raise
    return None if user is None else Authenticated(user, redeemed.credential, give_back)


@authenticator("token")
async def token_user(token: str) -> Authenticated | None:
    """Return the active owner of an API token (``Authorization: Token <key>``)."""
    user = await auser_by_token(token=token)
    return None if user is None else Authenticated(user, credential_id("token", token))


@event_hook("auth.revoked")
async def revoked(conn: Connection, message: dict[str, Any]) -> bool:
    """Close this socket if it was opened with the revoked credential (null: any).

    The event never reaches a client: it learns why from the close code and reason.
    """
    data = message["data"]
    if data["credential"] is None or data["credential"] == conn.credential:
        await conn.close(code=CLOSE_CREDENTIALS_REVOKED, reason=data["reason"])
    return True
