"""The one base of the errors services raise: a stable ``code`` plus a human message.

Each app names its own (conversations.exceptions, matching.exceptions); the WebSocket
gateway and the REST views turn any of them into the same error shape (docs/protocol.md).
"""


class ServiceError(Exception):
    code = "invalid"

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = message
        self.extra = extra
