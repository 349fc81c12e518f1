"""Presence follows consent: a block hides it at once, an accepted request starts it.

Presence events are addressed at each transition to the user's contacts as they are then
(``selectors.contact_ids``), so after a block no further ``presence`` passes between the two
and after an acceptance the next transitions reach the new contact. What the two were already
showing of each other is corrected here: a block pushes ``presence.hidden`` to both; an
acceptance pushes each side the current presence of the other (when online). Both come from
apps below presence (relations, conversations), hence signals (docs/architecture.md).
"""

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from conversations.models import Membership
from conversations.selectors import blocked_among
from conversations.signals import membership_accepted
from core.events import send_event, user_group
from relations.models import Block

from . import selectors


@receiver(post_save, sender=Block)
def _block_made(sender: Any, instance: Block, created: bool, raw: bool = False, **kw: Any) -> None:
    if created and not raw:
        presence_hide(user_id=instance.blocker_id, other_user_id=instance.blocked_id)


def presence_hide(*, user_id: int, other_user_id: int) -> None:
    """Tell both users' sockets to forget the other's presence (after the commit)."""
    send_event(
        event="presence.hidden", data={"user_id": other_user_id}, groups=[user_group(user_id)]
    )
    send_event(
        event="presence.hidden", data={"user_id": user_id}, groups=[user_group(other_user_id)]
    )


@receiver(membership_accepted)
def _accepted(sender: Any, conversation_id: int, user_id: int, **kw: Any) -> None:
    presence_reveal(conversation_id=conversation_id, user_id=user_id)


def presence_reveal(*, conversation_id: int, user_id: int) -> int:
    """Push ``user_id`` and the other accepted members of a conversation (of at most
    ``PRESENCE_PUSH_MAX_MEMBERS``) each other's current presence, where online; return how
    many events were pushed. Runs after the acceptance committed."""
    members = list(
        Membership.objects.filter(conversation_id=conversation_id).values_list("user_id", "state")
    )
    if len(members) > settings.LIMITS["PRESENCE_PUSH_MAX_MEMBERS"]:
        return 0
    others = [
        uid for uid, state in members if uid != user_id and state == Membership.State.ACCEPTED
    ]
    if not others or all(uid != user_id for uid, _ in members):
        return 0
    others = sorted(set(others) - blocked_among(user_id=user_id, user_ids=others))
    pushed = 0
    with transaction.atomic():  # send_event pushes on commit: together, after these reads
        for p in selectors.presence_get(user_ids=[user_id, *others]):
            if not p["online"] or p["last_seen"] is None:
                continue
            if p["user_id"] == user_id:
                groups = [user_group(uid) for uid in sorted(selectors.online_ids(user_ids=others))]
            else:
                groups = [user_group(user_id)]
            if groups:
                send_event(event="presence", data=p, groups=groups)
                pushed += 1
    return pushed
