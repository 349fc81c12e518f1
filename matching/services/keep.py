""" "Keep in touch": a match both sides chose to keep becomes their direct conversation."""

from django.db import transaction

from conversations.models import Conversation, Membership
from conversations.services import conversation_direct_get_or_create, membership_accept
from core.errors import Declined, Invalid
from core.events import send_event, user_group

from .. import selectors
from ..models import Match


def _direct_for_both(a: int, b: int) -> Conversation:
    """The direct conversation of ``a`` and ``b``, accepted by both.

    Both chose to keep in touch, which is each one's consent (design principle 11): a
    request the other side would have to accept is not needed. A conversation one of them
    declined before comes back from that side (opening it again is their consent too).
    """
    try:
        conversation, _ = conversation_direct_get_or_create(user_id=a, other_user_id=b)
    except Declined:  # b declined a's request once: b opening it brings it back
        conversation, _ = conversation_direct_get_or_create(user_id=b, other_user_id=a)
    pending = Membership.objects.filter(
        conversation=conversation, state=Membership.State.PENDING
    ).values_list("user_id", flat=True)
    for uid in list(pending):
        membership_accept(user_id=uid, conversation_id=conversation.pk)
    return conversation


def match_keep(*, user_id: int, match_id: object) -> dict:
    """Choose to keep in touch with my partner; once both chose, open our conversation.

    Only during the match. The partner hears ``match.keep`` when I choose first; both hear
    ``match.kept`` with the conversation's id when the second one chooses. Choosing again is
    a no-op that answers the same.
    """
    match = selectors.match_for_member(match_id=match_id, user_id=user_id)
    with transaction.atomic():
        match = Match.objects.select_for_update().get(pk=match.pk)
        if match.ended_at is not None:
            raise Invalid("This match has ended.")
        mine = "keep_a" if user_id == match.user_a_id else "keep_b"
        partner = match.partner_of(user_id)
        first_time = not getattr(match, mine)
        setattr(match, mine, True)
        if match.keep_a and match.keep_b and match.conversation_id is None:
            match.conversation = _direct_for_both(match.user_a_id, match.user_b_id)
            for uid in (match.user_a_id, match.user_b_id):
                send_event(
                    event="match.kept",
                    data={"match_id": match.pk, "conversation_id": match.conversation.pk},
                    groups=[user_group(uid)],
                )
        elif first_time and match.conversation_id is None:
            send_event(
                event="match.keep",
                data={"match_id": match.pk, "from_user_id": user_id},
                groups=[user_group(partner)],
            )
        match.save(update_fields=[mine, "conversation"])
    return {
        "match_id": match.pk,
        "kept": match.conversation_id is not None,
        "conversation_id": match.conversation_id,
    }
