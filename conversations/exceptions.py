"""Errors raised by conversation services, each with a stable protocol code."""


class ConversationError(Exception):
    code = "invalid"

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = message
        self.extra = extra


class Invalid(ConversationError):
    code = "invalid"


class Forbidden(ConversationError):
    code = "forbidden"


class NotFound(ConversationError):
    code = "not_found"


class Conflict(ConversationError):
    code = "conflict"
