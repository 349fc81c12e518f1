"""Writes to conversations: create, rename, membership (requests and invitations), send, edit,
delete.

Every change of a membership goes through this module: creation, accept, decline, add,
remove, leave (docs/subsystems/messaging.md, "Requests and invitations").
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import Blocked, Conflict, Declined, Forbidden, Invalid, NotFound
from core.events import conversation_group, send_event, send_events, user_group
from core.metrics import MESSAGE_SEND_SECONDS
from core.text import text_storable
from relations.selectors import block_exists_between

from .models import Conversation, Membership, Message
from .selectors import blocked_among, contact_ids_among, membership_get, message_serialize
from .signals import membership_accepted
from .writer import body_validate, message_event, messages_store, send_request_parse

User = get_user_model()


def _active_user_ids(user_ids: object) -> set[int]:
    if not isinstance(user_ids, list) or not all(
        isinstance(u, int) and not isinstance(u, bool) for u in user_ids
    ):
        raise Invalid("user_ids must be a list of user ids.")
    found = set(User.objects.filter(pk__in=user_ids, is_active=True).values_list("pk", flat=True))
    missing = set(user_ids) - found
    if missing:
        raise NotFound(f"No such user: {sorted(missing)[0]}.")
    return found


ACCEPTED = Membership.State.ACCEPTED
PENDING = Membership.State.PENDING


def _announce_joined(conversation: Conversation, memberships: list[Membership]) -> None:
    """``conversation.joined`` to the accepted ones (their sockets subscribe), and one
    ``conversation.request`` to each pending one (nothing else reaches them until they
    accept)."""
    common = {
        "conversation_id": conversation.pk,
        "kind": conversation.kind,
        "title": conversation.title,
        "last_seq": conversation.last_seq,
        "last_change_seq": conversation.last_change_seq,
    }
    for m in memberships:
        if m.state == PENDING:
            event, data = "conversation.request", {**common, "from_user_id": m.invited_by_id}
        else:
            event, data = "conversation.joined", {**common, "role": m.role}
        send_event(event=event, data=data, groups=[user_group(m.user_id)])


def _invited(
    *, conversation: Conversation, by_user_id: int, user_ids: list[int]
) -> list[Membership]:
    """Unsaved memberships of ``user_ids`` invited by ``by_user_id``: accepted for the
    inviter's contacts, pending (a request / an invitation) for everyone else.

    Refuses the lot with ``blocked`` if the inviter and one of them blocked the other.
    """
    if blocked_among(user_id=by_user_id, user_ids=user_ids):
        raise Blocked("You cannot start a conversation with this user.")
    contacts = contact_ids_among(user_id=by_user_id, user_ids=user_ids)
    return [
        Membership(
            conversation=conversation,
            user_id=uid,
            state=ACCEPTED if uid in contacts else PENDING,
            invited_by_id=by_user_id,
        )
        for uid in user_ids
    ]


def conversation_direct_get_or_create(
    *, user_id: int, other_user_id: object
) -> tuple[Conversation, bool]:
    """Return the one direct conversation between two users, creating it if needed.

    New, it is a request to the other side unless the two are contacts already. Refused
    with ``blocked`` when either blocked the other, and with ``declined`` when the other
    side declined it (opening it from their side again is their consent).
    """
    if not isinstance(other_user_id, int) or isinstance(other_user_id, bool):
        raise Invalid("user_id must be a user id.")
    if other_user_id == user_id:
        raise Invalid("A direct conversation needs another user.")
    _active_user_ids([other_user_id])
    if block_exists_between(user_id=user_id, other_user_id=other_user_id):
        raise Blocked("You cannot start a conversation with this user.")
    low, high = sorted((user_id, other_user_id))
    direct_key = f"{low}:{high}"
    existing = Conversation.objects.filter(direct_key=direct_key).first()
    if existing:
        return _direct_reopen(existing, user_id=user_id, other_user_id=other_user_id), False
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                kind=Conversation.Kind.DIRECT, direct_key=direct_key, created_by_id=user_id
            )
            members = Membership.objects.bulk_create(
                [
                    Membership(conversation=conversation, user_id=user_id),
                    *_invited(
                        conversation=conversation, by_user_id=user_id, user_ids=[other_user_id]
                    ),
                ]
            )
            _announce_joined(conversation, members)
    except IntegrityError:  # the other side created it at the same moment
        existing = Conversation.objects.get(direct_key=direct_key)
        return _direct_reopen(existing, user_id=user_id, other_user_id=other_user_id), False
    return conversation, True


def _direct_reopen(conversation: Conversation, *, user_id: int, other_user_id: int) -> Conversation:
    """Open an existing direct conversation again from ``user_id``'s side.

    Mine pending (a request to me): opening it accepts it. Mine gone (I declined it): it
    comes back, accepted. Theirs gone (they declined mine): ``declined``.
    """
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        states = dict(
            Membership.objects.filter(conversation=conversation).values_list("user_id", "state")
        )
        if other_user_id not in states:
            if user_id in states:
                raise Declined("They declined this conversation.")
            # Neither side is left (cannot happen through the services): start over.
            members = Membership.objects.bulk_create(
                [
                    Membership(conversation=conversation, user_id=user_id),
                    *_invited(
                        conversation=conversation, by_user_id=user_id, user_ids=[other_user_id]
                    ),
                ]
            )
            _members_changed(conversation)
            _announce_joined(conversation, members)
            return conversation
        if user_id not in states:
            (mine,) = Membership.objects.bulk_create(
                [Membership(conversation=conversation, user_id=user_id)]
            )
            _members_changed(conversation)
            _announce_joined(conversation, [mine])
            _accepted_announce(conversation, user_id)
            return conversation
    if states[user_id] == PENDING:
        membership_accept(user_id=user_id, conversation_id=conversation.pk)
    return conversation


def _accepted_announce(conversation: Conversation, user_id: int) -> None:
    """Tell the members that ``user_id`` accepted, and presence that it may flow now."""
    send_event(
        event="conversation.accepted",
        data={"conversation_id": conversation.pk, "user_id": user_id},
        groups=[conversation_group(conversation.pk)],
    )
    # robust: the acceptance is stored; presence failing to say so (Redis away) must not
    # turn its answer into a 500 (the next transitions and queries repair it).
    transaction.on_commit(
        lambda: membership_accepted.send(
            sender=Membership, conversation_id=conversation.pk, user_id=user_id
        ),
        robust=True,
    )


def membership_accept(*, user_id: int, conversation_id: int) -> Conversation:
    """Accept my request or invitation: the conversation joins my list and my sockets.

    Accepting twice is a no-op. A direct conversation with someone either side blocked
    cannot be accepted (``blocked``).
    """
    membership = membership_get(user_id=user_id, conversation_id=conversation_id)
    conversation = membership.conversation
    if membership.state == ACCEPTED:
        return conversation
    with transaction.atomic():
        # The locked row's last_seq is what my sockets start after (conversation.joined).
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if conversation.direct_key:
            low, high = (int(u) for u in conversation.direct_key.split(":"))
            other = high if user_id == low else low
            if block_exists_between(user_id=user_id, other_user_id=other):
                raise Blocked("You cannot accept a conversation with this user.")
        if not Membership.objects.filter(pk=membership.pk, state=PENDING).update(state=ACCEPTED):
            return conversation  # accepted meanwhile (another device), or gone
        membership.state = ACCEPTED
        _members_changed(conversation)
        _announce_joined(conversation, [membership])
        _accepted_announce(conversation, user_id)
    return conversation


def membership_decline(*, user_id: int, conversation_id: int) -> None:
    """Decline my request or invitation: my membership goes, and nothing more reaches me.

    In a direct conversation the requester can then no longer send (``declined``).
    """
    membership = membership_get(user_id=user_id, conversation_id=conversation_id)
    if membership.state != PENDING:
        raise Conflict("There is no request to decline here.")
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=membership.conversation_id)
        if not Membership.objects.filter(pk=membership.pk, state=PENDING).exists():
            raise Conflict("There is no request to decline here.")  # accepted meanwhile
        _remove(conversation, [user_id])


def _title_clean(title: object) -> str:
    """A group title as stored (trimmed), or ``invalid``: plain text of 1 to
    ``GROUP_TITLE_MAX_CHARS`` characters."""
    if not isinstance(title, str) or not title.strip() or not text_storable(title):
        raise Invalid("A group needs a title (plain text).")
    title = title.strip()
    if len(title) > settings.LIMITS["GROUP_TITLE_MAX_CHARS"]:
        raise Invalid(f"A title has at most {settings.LIMITS['GROUP_TITLE_MAX_CHARS']} characters.")
    return title


def conversation_group_create(*, user_id: int, title: object, member_ids: object) -> Conversation:
    """Create a group conversation owned by ``user_id`` with the given members."""
    title = _title_clean(title)
    others = _active_user_ids(member_ids) - {user_id}
    if len(others) + 1 > settings.LIMITS["GROUP_MAX_MEMBERS"]:
        raise Invalid(f"A group has at most {settings.LIMITS['GROUP_MAX_MEMBERS']} members.")
    with transaction.atomic():
        conversation = Conversation.objects.create(
            kind=Conversation.Kind.GROUP, title=title, created_by_id=user_id
        )
        members = Membership.objects.bulk_create(
            [
                Membership(conversation=conversation, user_id=user_id, role=Membership.Role.OWNER),
                *_invited(conversation=conversation, by_user_id=user_id, user_ids=sorted(others)),
            ]
        )
        _announce_joined(conversation, members)
    return conversation


def _group_for_owner(
    *,
    user_id: int,
    conversation_id: int,
    direct: str = "Direct conversations have fixed members.",
    not_owner: str = "Only owners change the members.",
) -> Conversation:
    """The group ``conversation_id`` if ``user_id`` owns it; ``invalid`` (``direct``) for a
    direct conversation, ``forbidden`` (``not_owner``) for anyone but an owner."""
    membership = membership_get(user_id=user_id, conversation_id=conversation_id)
    if membership.conversation.kind != Conversation.Kind.GROUP:
        raise Invalid(direct)
    if membership.role != Membership.Role.OWNER:
        raise Forbidden(not_owner)
    return membership.conversation


def conversation_rename(*, user_id: int, conversation_id: int, title: object) -> Conversation:
    """Rename a group I own; its members' pages are told (``conversation.renamed``).

    The same title again changes nothing and tells nobody.
    """
    title = _title_clean(title)
    conversation = _group_for_owner(
        user_id=user_id,
        conversation_id=conversation_id,
        direct="Direct conversations have no title to change.",
        not_owner="Only owners rename the group.",
    )
    with transaction.atomic():
        # Renames of two owners at once: the later commit is the title everyone ends on, and
        # its event is the last one sent (the lock orders the two).
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if conversation.title == title:
            return conversation
        conversation.title = title
        conversation.save(update_fields=["title"])
        send_event(
            event="conversation.renamed",
            data={"conversation_id": conversation.pk, "title": title, "by_user_id": user_id},
            groups=[conversation_group(conversation.pk)],
            members_version=conversation.members_version,
        )
    return conversation


def members_add(*, user_id: int, conversation_id: int, member_ids: object) -> list[int]:
    """Invite users to a group I own; return the ids actually added.

    My contacts are members at once; the others are invited (pending) until they accept.
    """
    conversation = _group_for_owner(user_id=user_id, conversation_id=conversation_id)
    wanted = _active_user_ids(member_ids)
    with transaction.atomic():
        # Serialise resizes; the locked row's last_seq is what the new members start after.
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        present = set(
            Membership.objects.filter(conversation=conversation).values_list("user_id", flat=True)
        )
        new = sorted(wanted - present)
        if len(present) + len(new) > settings.LIMITS["GROUP_MAX_MEMBERS"]:
            raise Invalid(f"A group has at most {settings.LIMITS['GROUP_MAX_MEMBERS']} members.")
        created = Membership.objects.bulk_create(
            _invited(conversation=conversation, by_user_id=user_id, user_ids=new)
        )
        if new:
            _members_changed(conversation)
            _announce_joined(conversation, created)
            send_event(
                event="conversation.members",
                data={"conversation_id": conversation.pk, "added": new, "removed": []},
                groups=[conversation_group(conversation.pk)],
            )
    return new


def _members_changed(conversation: Conversation) -> None:
    """Move the conversation's members version up, in the transaction that changes them.

    Every change of the members comes through here. Events carry the version they were
    sent under; a process delivering one re-reads the members when its own copy is older
    (``conversations.members``), so a removed member stops hearing the conversation even
    when the pushes below are lost.
    """
    Conversation.objects.filter(pk=conversation.pk).update(members_version=F("members_version") + 1)


def _remove(conversation: Conversation, user_ids: list[int]) -> None:
    Membership.objects.filter(conversation=conversation, user_id__in=user_ids).delete()
    _members_changed(conversation)
    for uid in user_ids:
        send_event(
            event="conversation.left",
            data={"conversation_id": conversation.pk},
            groups=[user_group(uid)],
        )
    send_event(
        event="conversation.members",
        data={"conversation_id": conversation.pk, "added": [], "removed": sorted(user_ids)},
        groups=[conversation_group(conversation.pk)],
    )


def member_remove(*, user_id: int, conversation_id: int, member_id: int) -> None:
    """Remove a member from a group I own (owners leave with ``conversation_leave``)."""
    conversation = _group_for_owner(user_id=user_id, conversation_id=conversation_id)
    if member_id == user_id:
        raise Invalid("Use leave to remove yourself.")
    with transaction.atomic():
        if not Membership.objects.filter(conversation=conversation, user_id=member_id).exists():
            raise NotFound("That user is not a member.")
        _remove(conversation, [member_id])


def conversation_leave(*, user_id: int, conversation_id: int) -> None:
    """Leave a group. The last owner to leave hands ownership to the longest accepted member
    (a pending one leaving declines)."""
    membership = membership_get(user_id=user_id, conversation_id=conversation_id)
    conversation = membership.conversation
    if conversation.kind != Conversation.Kind.GROUP:
        raise Invalid("You cannot leave a direct conversation.")
    with transaction.atomic():
        Conversation.objects.select_for_update().get(pk=conversation.pk)
        _remove(conversation, [user_id])
        owners = Membership.objects.filter(conversation=conversation, role=Membership.Role.OWNER)
        if not owners.exists():
            heir = (  # among those who accepted: an invitation does not make an owner
                Membership.objects.filter(conversation=conversation, state=ACCEPTED)
                .order_by("joined_at", "user_id")
                .first()
            )
            if heir:
                heir.role = Membership.Role.OWNER
                heir.save(update_fields=["role"])


def message_send(
    *, sender_id: int, conversation_id: object, body: object, client_id: object
) -> tuple[Message, bool]:
    """Store a message once per (sender, client_id); return it and whether it is new.

    The REST send: a batch of one through ``conversations.writer.messages_store`` (the
    WebSocket's ``message.send`` queues into the same SQL with the sends alongside it), and
    the push after the commit.
    """
    request = send_request_parse(
        sender_id=sender_id, conversation_id=conversation_id, body=body, client_id=client_id
    )
    with MESSAGE_SEND_SECONDS.time(), transaction.atomic():
        (stored,) = messages_store([request])
        if stored.error is not None:
            raise stored.error
        assert stored.message is not None
        if stored.created:
            send_events(items=[message_event(stored)])
    return stored.message, stored.created


def _own_message(*, user_id: int, message_id: object) -> tuple[Message, int]:
    """My message, and the members version of its conversation as my membership was read."""
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        raise Invalid("message_id must be an integer.")
    message = Message.objects.filter(pk=message_id).first()
    if message is None:
        raise NotFound("No such message.")
    membership = membership_get(user_id=user_id, conversation_id=message.conversation_id)
    if message.sender_id != user_id:
        raise Forbidden("You can only change your own messages.")
    if message.deleted_at is not None:
        raise Invalid("This message was deleted.")
    return message, membership.conversation.members_version


def _change(message: Message, **fields: object) -> None:
    """Store a change of ``message`` under the conversation's next change number.

    The number is handed out under the conversation's row lock, held to the commit, so
    change numbers commit in order: a reader that sees change n sees every change before
    it (what lets ``sync`` and a connection's gap read replay changes after a cursor).
    The lock is the one the writer takes for a send, in the same order (the conversation
    first, then its message). Re-checked under it: a deletion that committed meanwhile
    wins, and this change is refused.
    """
    table = Conversation._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_change_seq = last_change_seq + 1 WHERE id = %s "
            f"RETURNING last_change_seq",
            [message.conversation_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise NotFound("No such message.")
    message.change_seq = row[0]
    for name, value in fields.items():
        setattr(message, name, value)
    if not Message.objects.filter(pk=message.pk, deleted_at__isnull=True).update(
        change_seq=message.change_seq, **fields
    ):
        raise Invalid("This message was deleted.")


def _announce_update(message: Message, members_version: int) -> None:
    send_event(
        event="message.updated",
        data=message_serialize(message),
        groups=[conversation_group(message.conversation_id)],
        members_version=members_version,
    )


def message_edit(*, user_id: int, message_id: object, body: object) -> Message:
    """Replace the body of my own message."""
    body = body_validate(body)
    with transaction.atomic():
        message, version = _own_message(user_id=user_id, message_id=message_id)
        _change(message, body=body, edited_at=timezone.now())
        _announce_update(message, version)
    return message


def message_delete(*, user_id: int, message_id: object) -> Message:
    """Soft-delete my own message: it keeps its seq, loses its body."""
    with transaction.atomic():
        message, version = _own_message(user_id=user_id, message_id=message_id)
        _change(message, body="", deleted_at=timezone.now())
        _announce_update(message, version)
    return message
