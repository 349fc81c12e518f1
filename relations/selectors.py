"""Reads of relations between people."""

from django.db.models import Q

from .models import Block


def block_exists_between(*, user_id: int, other_user_id: int) -> bool:
    """Return whether either user blocked the other."""
    return Block.objects.filter(
        Q(blocker_id=user_id, blocked_id=other_user_id)
        | Q(blocker_id=other_user_id, blocked_id=user_id)
    ).exists()


def blocked_either_way(*, user_id: int) -> set[int]:
    """Return the users ``user_id`` blocked or was blocked by."""
    pairs = Block.objects.filter(Q(blocker_id=user_id) | Q(blocked_id=user_id)).values_list(
        "blocker_id", "blocked_id"
    )
    return {blocked if blocker == user_id else blocker for blocker, blocked in pairs}


def blocks_made(*, user_id: int, limit: int) -> list[Block]:
    """Return the blocks ``user_id`` made, newest first, with the blocked users loaded."""
    return list(
        Block.objects.filter(blocker_id=user_id)
        .select_related("blocked", "blocked__profile")
        .order_by("-created_at", "-pk")[:limit]
    )
