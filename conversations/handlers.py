"""WebSocket frames for messaging: send, edit, delete."""

from realtime.db import db
from realtime.router import handler

from . import services
from .selectors import message_serialize


def _send(user_id: int, data: dict) -> dict:
    message, created = services.message_send(
        sender_id=user_id,
        conversation_id=data.get("conversation_id"),
        body=data.get("body"),
        client_id=data.get("client_id"),
    )
    return {"message": message_serialize(message), "duplicate": not created}


@handler("message.send")
async def message_send(conn, data: dict) -> dict:
    """Store a message (once per client_id) and push it to every member."""
    return await db(_send)(conn.user_id, data)


@handler("message.edit")
async def message_edit(conn, data: dict) -> dict:
    message = await db(services.message_edit)(
        user_id=conn.user_id, message_id=data.get("message_id"), body=data.get("body")
    )
    return {"message": message_serialize(message)}


@handler("message.delete")
async def message_delete(conn, data: dict) -> dict:
    message = await db(services.message_delete)(
        user_id=conn.user_id, message_id=data.get("message_id")
    )
    return {"message": message_serialize(message)}
