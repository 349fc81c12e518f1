"""Whether an account may sign in: the check hook behind log-in, tokens and tickets.

A moderator's suspension or ban (docs/subsystems/moderation.md) must stop every way in: the
log-in page, ``POST /api/auth/token`` and ``/api/auth/session``, REST requests with a token
or a session, ticket issue and WebSocket connects. Those live here in accounts, below the
``moderation`` app that keeps the sanctions (it sits above Meet, whose reports it acts on),
and a lower app never imports a higher one. So accounts owns the question and its answer's
shape (``Restriction``), and ``moderation`` registers the one function that answers it
(``restriction_checker``, from its ``AppConfig.ready``). Without a registered checker
nobody is restricted.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from core.errors import CLOSE_ACCOUNT_SUSPENDED, Refused, Suspended


@dataclass(frozen=True)
class Restriction:
    """A sanction in force: ``until`` None is a ban."""

    category: str  # the report reason it was given for ("harassment", ...), or "other"
    until: datetime | None

    @property
    def kind(self) -> str:
        return "banned" if self.until is None else "suspended"

    def message(self) -> str:
        """What the user is told, wherever they are refused."""
        if self.until is None:
            return f"This account is banned ({self.category})."
        when = self.until.strftime("%Y-%m-%d %H:%M UTC")
        return f"This account is suspended until {when} ({self.category})."

    def error(self) -> Suspended:
        """The ``suspended`` error of the REST API and of WebSocket replies."""
        return Suspended(
            self.message(),
            kind=self.kind,
            category=self.category,
            until=None if self.until is None else self.until.isoformat(),
        )

    def close_reason(self) -> str:
        """The WebSocket close reason (at most 123 bytes; docs/protocol.md, 4451)."""
        if self.until is None:
            return f"banned {self.category}"
        return f"suspended {self.category} {self.until.strftime('%Y-%m-%dT%H:%M:%SZ')}"

    def refused(self) -> Refused:
        return Refused(CLOSE_ACCOUNT_SUSPENDED, self.close_reason())


Check = Callable[[int], Restriction | None]
ACheck = Callable[[int], Awaitable[Restriction | None]]


@dataclass(frozen=True)
class _Checker:
    check: Check
    acheck: ACheck


_checker: list[_Checker] = []


def restriction_checker(*, check: Check, acheck: ACheck) -> None:
    """Register the function that says whether a user is restricted (and its async twin).

    One checker: registering again replaces it (tests reload apps).
    """
    _checker[:] = [_Checker(check, acheck)]


def user_restriction(*, user_id: int) -> Restriction | None:
    """Return the sanction in force on ``user_id``, or None."""
    return _checker[0].check(user_id) if _checker else None


async def auser_restriction(*, user_id: int) -> Restriction | None:
    """``user_restriction`` from the event loop."""
    return await _checker[0].acheck(user_id) if _checker else None


def user_unrestricted_check(*, user_id: int) -> None:
    """Raise ``Suspended`` (403) if a sanction is in force on ``user_id``."""
    restriction = user_restriction(user_id=user_id)
    if restriction is not None:
        raise restriction.error()
