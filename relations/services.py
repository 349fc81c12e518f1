"""Writes of relations between people."""

from django.contrib.auth import get_user_model

from core.errors import Invalid, NotFound

from .models import Block

User = get_user_model()


def block_create(
    *, user_id: int, blocked_id: object, match_id: int | None = None
) -> tuple[Block, bool]:
    """Record that ``user_id`` blocks ``blocked_id`` (once); return it and whether it is new."""
    if not isinstance(blocked_id, int) or isinstance(blocked_id, bool):
        raise Invalid("Give match_id or user_id.")
    if blocked_id == user_id:
        raise Invalid("You cannot block yourself.")
    if not User.objects.filter(pk=blocked_id).exists():
        raise NotFound("No such user.")
    return Block.objects.get_or_create(
        blocker_id=user_id, blocked_id=blocked_id, defaults={"match_id": match_id}
    )


def block_delete(*, user_id: int, blocked_id: object) -> None:
    """Take back the block ``user_id`` made on ``blocked_id``; ``not_found`` if there is none.

    Only the blocker's own block goes: if the other side blocked them too, that one stays.
    """
    if not isinstance(blocked_id, int) or isinstance(blocked_id, bool):
        raise Invalid("user_id must be a user id.")
    deleted, _ = Block.objects.filter(blocker_id=user_id, blocked_id=blocked_id).delete()
    if not deleted:
        raise NotFound("You have not blocked this user.")
