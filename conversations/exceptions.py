"""Errors raised by conversation services, each with a stable protocol code."""

from switchboard.errors import ServiceError


class ConversationError(ServiceError):
    """An error of this app's services (see switchboard.errors)."""


class Invalid(ConversationError):
    code = "invalid"


class Forbidden(ConversationError):
    code = "forbidden"


class NotFound(ConversationError):
    code = "not_found"


class Conflict(ConversationError):
    code = "conflict"
