"""Every server-pushed event type and the shape of its ``data`` (docs/protocol.md).

``send_event`` refuses an undeclared type, and tests check each payload against this table,
so the protocol document, the server and the tests cannot drift apart silently.
"""

from typing import Any

# A field's type, or the types it may have (``(int, type(None))``: an int or null).
FieldKind = type | tuple[type, ...]

MESSAGE_FIELDS: dict[str, FieldKind] = {
    "id": int,
    "conversation_id": int,
    "seq": int,
    "sender_id": (int, type(None)),
    "body": str,
    "client_id": str,
    "created_at": str,
    "edited_at": (str, type(None)),
    "deleted": bool,
    # The conversation's change number of the message's last edit or deletion (0: never).
    "change_seq": int,
}

EVENT_SCHEMAS: dict[str, dict[str, FieldKind]] = {
    # A new message; sequenced: delivered in seq order, gap-filled, once per connection.
    "message.new": MESSAGE_FIELDS,
    # A message's body changed or it was deleted (soft); carries the whole message.
    "message.updated": MESSAGE_FIELDS,
    # The recipient became a member of a conversation (created, or added by an owner).
    # ``last_seq``: the conversation's head when the membership was stored; later messages
    # are new to the recipient.
    "conversation.joined": {
        "conversation_id": int,
        "kind": str,
        "title": str,
        "role": str,
        "last_seq": int,
        "last_change_seq": int,
    },
    # A request (a direct conversation from someone not yet a contact) or an invitation to a
    # group: the recipient is a pending member; nothing else of it reaches them until they
    # accept (docs/subsystems/messaging.md, "Requests and invitations").
    "conversation.request": {
        "conversation_id": int,
        "kind": str,
        "title": str,
        "from_user_id": (int, type(None)),
        "last_seq": int,
        "last_change_seq": int,
    },
    # A pending member accepted (to the conversation's members).
    "conversation.accepted": {"conversation_id": int, "user_id": int},
    # The recipient is no longer a member (left, removed by an owner, or declined).
    "conversation.left": {"conversation_id": int},
    # An owner renamed a group the recipient is an accepted member of (pending members read
    # the title when they look at their requests).
    "conversation.renamed": {"conversation_id": int, "title": str, "by_user_id": int},
    # Membership of a conversation the recipient is in changed.
    "conversation.members": {"conversation_id": int, "added": list, "removed": list},
    # Resume or gap fill could not deliver everything: re-fetch by REST from ``after_seq``.
    "sync.too_far": {"conversation_id": int, "after_seq": int, "latest_seq": int},
    # More edits and deletions were missed than the server replays: re-read the messages
    # shown over REST; the connection holds every change up to ``latest_change_seq``.
    "sync.changes_too_far": {
        "conversation_id": int,
        "after_change_seq": int,
        "latest_change_seq": int,
    },
    # A contact came online or went offline (docs/subsystems/presence.md); ISO last_seen.
    "presence": {"user_id": int, "online": bool, "last_seen": str},
    # A block (either way) hides the two users' presence from each other from now on: forget
    # what you show of ``user_id``'s presence.
    "presence.hidden": {"user_id": int},
    # Another member started or stopped typing; expire it client-side (docs/.../typing.md).
    "typing": {"conversation_id": int, "user_id": int, "typing": bool},
    # A member's read marker moved forward to ``seq`` (docs/subsystems/receipts.md).
    "read": {"user_id": int, "conversation_id": int, "seq": int},
    # After my read marker moved: my exact counts, covering messages up to ``last_seq``; add
    # the message.new from others with a larger seq yourself. Keep the highest ``version``.
    "unread": {
        "conversation_id": int,
        "unread": int,
        "total": int,
        "last_seq": int,
        "version": int,
    },
    # Meet (docs/subsystems/matching.md). I was paired; ``initiator`` makes the WebRTC offer.
    "match.found": {
        "match_id": int,
        "partner": dict,
        "shared_interests": list,
        "initiator": bool,
        "created_at": str,
    },
    # The room closed: reason "skip", "block", "expired" or "partner_left" (by_user_id: who
    # left); by_user_id null when the server ended it.
    "match.ended": {"match_id": int, "reason": str, "by_user_id": (int, type(None))},
    # A view (a reload, a second tab) of user_id took the room over: the partner negotiates
    # WebRTC again; user_id's other views let go unless rejoin_id is theirs.
    "match.rejoined": {"match_id": int, "user_id": int, "rejoin_id": str},
    # A text line from my partner in the room (ephemeral: never stored).
    "match.message": {"match_id": int, "from_user_id": int, "text": str, "sent_at": str},
    # WebRTC signalling from my partner: kind offer / answer / ice; payload null = end of ICE.
    "match.signal": {
        "match_id": int,
        "from_user_id": int,
        "kind": str,
        "payload": (dict, type(None)),
    },
    # My partner chose "keep in touch" (I have not yet): choosing too opens our conversation.
    "match.keep": {"match_id": int, "from_user_id": int},
    # Both chose "keep in touch": the direct conversation the match became (accepted by both).
    "match.kept": {"match_id": int, "conversation_id": int},
    # Credentials were revoked (log-out, password change, token revoked): the user's sockets
    # authenticated with ``credential`` (a ``core.router.credential_id``; null: every socket
    # of the user) close with ``code`` (4440; 4451 for a moderator's suspension or ban), the
    # close reason ``reason``. Consumed by accounts' event hook: never sent to a client.
    "auth.revoked": {"reason": str, "credential": (str, type(None)), "code": int},
    # A moderator warned the user (docs/subsystems/moderation.md): to every socket of the
    # user; ``category`` is the report's reason, ``message`` what to show, ``at`` ISO time.
    # Also shown once on the user's next page (the event is at most once).
    "moderation.warning": {"warning_id": int, "category": str, "message": str, "at": str},
    # The live feed (docs/subsystems/live.md), to connections that sent ``live.subscribe``:
    # counters computed every few seconds by a Celery task; ``trending`` is a list of
    # {"interest": str, "score": int}, highest first; ``at`` the ISO time of the count.
    "live.stats": {
        "users_online": int,
        "waiting_in_pool": int,
        "matches_last_minute": int,
        "messages_last_minute": int,
        "trending": list,
        "at": str,
    },
}


def event_validate(event: str, data: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless ``data`` has exactly the declared fields and types."""
    schema = EVENT_SCHEMAS.get(event)
    if schema is None:
        raise ValueError(f"undeclared event type {event!r}")
    if set(data) != set(schema):
        raise ValueError(f"{event}: fields {sorted(data)} != {sorted(schema)}")
    for field, kind in schema.items():
        value = data[field]
        if isinstance(value, bool) and kind is int:
            raise ValueError(f"{event}.{field}: bool where int expected")
        if not isinstance(value, kind):
            raise ValueError(f"{event}.{field}: {type(value).__name__} is not {kind}")
