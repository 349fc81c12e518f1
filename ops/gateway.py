"""Open sockets per web process (``ops.connections``), counted by gateway hooks."""

from core.router import Connection, hook

from . import connections


class CountState:
    def __init__(self) -> None:
        self.counted = False


@hook("connect", order=90)
async def count_opened(conn: Connection) -> None:
    await connections.connection_opened()
    conn.state(CountState).counted = True


@hook("frame")
async def count_active(conn: Connection) -> None:
    connections.connection_active()


@hook("disconnect", order=90)
async def count_closed(conn: Connection) -> None:
    if conn.state(CountState).counted:
        await connections.connection_closed()
