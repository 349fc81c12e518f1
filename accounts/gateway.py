"""Accounts on the WebSocket gateway: how a ticket or API token finds its user, the event
hook that closes the sockets whose credentials were revoked (issue: Hardening, 11), and the
refusal of a suspended or banned account's sockets."""

from typing import Any

from core.router import (
    Authenticated,
    Connection,
    authenticator,
    credential_id,
    event_hook,
    hook,
)

from .restrictions import auser_restriction
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
        await conn.close(code=data["code"], reason=data["reason"])
    return True


@hook("connect", order=0)
async def unrestricted(conn: Connection) -> None:
    """Refuse (4451) a socket of a suspended or banned account, whatever its credential.

    A connect hook, not an admit hook: it runs once the socket has joined its user's group,
    so a suspension committed after this read reaches the socket through ``auth.revoked``,
    and one committed before is seen by the read. A ticket redeemed for it is used up (the
    account could not use it anyway until the sanction ends; tickets live 30 s).
    """
    restriction = await auser_restriction(user_id=conn.user_id)
    if restriction is not None:
        raise restriction.refused()
