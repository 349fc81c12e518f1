"""An asyncio client of the Switchboard WebSocket protocol (docs/protocol.md, docs/client.md).

It imports no server code: only the websockets library (the socket) and httpx (tokens and
tickets over REST). ``Client`` reconnects, resumes and keeps an outbox; ``Connection`` is one
socket, for programs that want every frame as it comes.
"""

from switchboard_client.backoff import backoff_cap, backoff_delay
from switchboard_client.client import (
    Client,
    CloseCode,
    Event,
    Opened,
    Options,
    Outgoing,
    State,
    Subscription,
)
from switchboard_client.connection import Connection, Frame, url_with_ticket
from switchboard_client.errors import (
    ConnectError,
    ConnectionClosed,
    RequestError,
    SwitchboardError,
)
from switchboard_client.http import HttpError, ticket_source, token_login, ws_ticket, ws_url

__all__ = [
    "Client",
    "CloseCode",
    "ConnectError",
    "Connection",
    "ConnectionClosed",
    "Event",
    "Frame",
    "HttpError",
    "Opened",
    "Options",
    "Outgoing",
    "RequestError",
    "State",
    "Subscription",
    "SwitchboardError",
    "backoff_cap",
    "backoff_delay",
    "ticket_source",
    "token_login",
    "url_with_ticket",
    "ws_ticket",
    "ws_url",
]
