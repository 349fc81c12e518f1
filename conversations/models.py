from django.conf import settings
from django.db import models


class Conversation(models.Model):
    class Kind(models.TextChoices):
        DIRECT = "direct"
        GROUP = "group"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    title = models.CharField(max_length=settings.LIMITS["GROUP_TITLE_MAX_CHARS"], blank=True)
    # "<smaller user id>:<larger user id>" for direct conversations: at most one per pair.
    direct_key = models.CharField(max_length=50, null=True, blank=True, unique=True)
    # The last sequence number handed out; incremented under the row lock (message_send).
    last_seq = models.BigIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True)
    # Moves up by one with every change of the members, in the transaction that makes it
    # (``conversations.services``). Events carry the version they were sent under, so a
    # process delivering one can tell that its idea of the members is out of date
    # (``conversations.members``): delivery never depends on a membership push arriving.
    members_version = models.BigIntegerField(default=0)
    # The last change number handed out to an edit or a deletion of one of its messages,
    # incremented under the row lock (``conversations.services``): a client's change cursor
    # says which edits and deletions it holds, and ``sync`` replays the ones after it.
    # Sends never touch it.
    last_change_seq = models.BigIntegerField(default=0, db_default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["-last_message_at"], name="conv_activity")]

    def __str__(self) -> str:
        return self.title or f"{self.kind} #{self.pk}"


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        MEMBER = "member"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )

    class State(models.TextChoices):
        # Consent (design principle 11): a request or an invitation is pending until the
        # member accepts it; until then they get no pushes, no presence, and cannot send.
        ACCEPTED = "accepted"
        PENDING = "pending"

    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACCEPTED)
    # Who made the request or invitation (pending members, and those who accepted one).
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    joined_at = models.DateTimeField(auto_now_add=True)
    # Read marker: every message up to this seq counts as read (receipts, unread counts).
    last_read_seq = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="one_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.conversation_id} ({self.role}, {self.state})"


class Message(models.Model):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    seq = models.BigIntegerField()
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField()
    client_id = models.CharField(max_length=settings.LIMITS["CLIENT_ID_MAX_CHARS"])
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # The conversation's change number of this message's last edit or deletion (0: never
    # changed). The database default stores it for the writer's inserts, which name no
    # such column: a send costs nothing more.
    change_seq = models.BigIntegerField(default=0, db_default=0)
    # The author's profile language (ISO 639-1) when the message was sent, "" without a
    # profile: it picks the text search configuration of the message's ``search`` column
    # (migration 0006, PostgreSQL only: a stored generated column the model does not
    # declare, docs/subsystems/search.md). The writer's batch statement fills it.
    language = models.CharField(max_length=2, blank=True, default="", db_default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="one_seq"),
            models.UniqueConstraint(fields=["sender", "client_id"], name="idempotent_send"),
        ]
        indexes = [
            # The changes after a cursor (``sync``), in change order. Partial: a new message
            # (change 0) adds no entry, so sends do not maintain it.
            models.Index(
                fields=["conversation", "change_seq"],
                name="msg_changes",
                condition=models.Q(change_seq__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} in {self.conversation_id}"
