"""Relations between two people, consulted by conversations and Meet alike."""

from django.conf import settings
from django.db import models


class Block(models.Model):
    """``blocker`` never meets ``blocked`` again, and neither can message the other."""

    blocker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocks_made"
    )
    blocked = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocks_received"
    )
    # The Meet match it was made from, if any: an id, not a foreign key, because relations
    # sit below matching (docs/architecture.md).
    match_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["blocker", "blocked"], name="relations_one_block_per_pair"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.blocker_id} blocked {self.blocked_id}"
