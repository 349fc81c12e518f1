"""Reads of notifications: who is away with news, what their digest says, their settings."""

import datetime
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from conversations.models import Conversation, Membership, Message
from presence.selectors import online_ids, unread_counts
from profiles.models import Profile

from .models import Absence, Mute, NotificationSettings, PushSubscription


@dataclass
class DigestConversation:
    conversation_id: int
    title: str
    unread: int
    # (sender's name, first line) of the first messages that came while the user was away.
    lines: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Digest:
    user_id: int
    away_since: datetime.datetime
    conversations: list[DigestConversation]

    @property
    def unread(self) -> int:
        return sum(c.unread for c in self.conversations)


def _away_sql() -> str:
    user_table = get_user_model()._meta.db_table
    return (
        f"SELECT mb.user_id, COALESCE(p.last_seen, u.date_joined) AS away_since "
        f"FROM {Conversation._meta.db_table} c "
        f"JOIN {Membership._meta.db_table} mb ON mb.conversation_id = c.id "
        f"AND mb.state = 'accepted' AND mb.last_read_seq < c.last_seq "
        f"JOIN {user_table} u ON u.id = mb.user_id AND u.is_active "
        f"LEFT JOIN {Profile._meta.db_table} p ON p.user_id = mb.user_id "
        f"WHERE c.last_message_at >= %s "
        f"AND COALESCE(p.last_seen, u.date_joined) <= %s "
        f"AND c.last_message_at > COALESCE(p.last_seen, u.date_joined) "
        # a message from someone else, not read, that came while the user was away
        f"AND EXISTS (SELECT 1 FROM {Message._meta.db_table} msg "
        f"WHERE msg.conversation_id = c.id AND msg.seq > mb.last_read_seq "
        f"AND msg.deleted_at IS NULL AND msg.sender_id <> mb.user_id "
        f"AND msg.created_at > COALESCE(p.last_seen, u.date_joined)) "
        f"AND NOT EXISTS (SELECT 1 FROM {Mute._meta.db_table} m "
        f"WHERE m.user_id = mb.user_id AND m.conversation_id = c.id) "
        f"AND NOT EXISTS (SELECT 1 FROM {NotificationSettings._meta.db_table} s "
        f"WHERE s.user_id = mb.user_id AND NOT s.email AND NOT s.push) "
        # told already during this absence (back means last_seen moved past notified_at)
        f"AND NOT EXISTS (SELECT 1 FROM {Absence._meta.db_table} a "
        f"WHERE a.user_id = mb.user_id AND a.notified_at >= COALESCE(p.last_seen, u.date_joined)) "
        f"GROUP BY mb.user_id, COALESCE(p.last_seen, u.date_joined) "
        f"ORDER BY mb.user_id LIMIT %s"
    )


def away_with_news(*, now: datetime.datetime | None = None) -> list[tuple[int, datetime.datetime]]:
    """Return ``(user_id, away_since)`` of members to notify now, at most NOTIFY_SCAN_BATCH.

    Away: no live connection (not announced online, presence on the bus) and none for
    NOTIFY_AWAY_SECONDS (``Profile.last_seen``, or the sign-up for who never connected);
    with news: an unread message from someone else in an unmuted conversation that came
    after they left; not told yet during this absence. One query over the conversations
    active within NOTIFY_LOOKBACK_SECONDS (the ``conv_activity`` index), then one ZMSCORE.
    """
    now = now or timezone.now()
    limits = settings.LIMITS
    params = [
        now - datetime.timedelta(seconds=limits["NOTIFY_LOOKBACK_SECONDS"]),
        now - datetime.timedelta(seconds=limits["NOTIFY_AWAY_SECONDS"]),
        limits["NOTIFY_SCAN_BATCH"],
    ]
    with connection.cursor() as cursor:
        cursor.execute(_away_sql(), params)
        rows = [(uid, _aware(since)) for uid, since in cursor.fetchall()]
    online = online_ids(user_ids=[uid for uid, _ in rows])
    return [(uid, since) for uid, since in rows if uid not in online]


def _aware(value: datetime.datetime | str) -> datetime.datetime:
    # SQLite returns the COALESCE as text; PostgreSQL as an aware datetime.
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, datetime.UTC)
    return value


def away_since(*, user_id: int) -> datetime.datetime | None:
    """Return since when the user has been away (``None``: online now or unknown user)."""
    if online_ids(user_ids=[user_id]):
        return None
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return None
    last_seen = Profile.objects.filter(user_id=user_id).values_list("last_seen", flat=True).first()
    return last_seen or user.date_joined


def digest_get(*, user_id: int, since: datetime.datetime) -> Digest:
    """Return the unmuted conversations with unread messages that came since ``since``."""
    limits = settings.LIMITS
    muted = set(Mute.objects.filter(user_id=user_id).values_list("conversation_id", flat=True))
    counts = {
        cid: n for cid, n in unread_counts(user_ids=[user_id]).get(user_id, {}).items()
        if cid not in muted
    }  # fmt: skip
    memberships = {
        m.conversation_id: m
        for m in Membership.objects.filter(
            user_id=user_id, conversation_id__in=list(counts), state=Membership.State.ACCEPTED
        ).select_related("conversation")
    }
    out: list[DigestConversation] = []
    recent = sorted(
        memberships.values(), key=lambda m: m.conversation.last_message_at or since, reverse=True
    )
    for membership in recent:
        news = list(
            Message.objects.filter(
                conversation_id=membership.conversation_id,
                seq__gt=membership.last_read_seq,
                created_at__gt=since,
                deleted_at__isnull=True,
            )
            .exclude(sender_id=user_id)
            .select_related("sender")
            .order_by("seq")[: limits["NOTIFY_DIGEST_LINES"]]
        )
        if not news:
            continue
        out.append(
            DigestConversation(
                conversation_id=membership.conversation_id,
                title=_title(membership.conversation, user_id, news),
                unread=counts[membership.conversation_id],
                lines=[(_name(m), _first_line(m.body)) for m in news],
            )
        )
        if len(out) >= limits["NOTIFY_DIGEST_CONVERSATIONS"]:
            break
    return Digest(user_id=user_id, away_since=since, conversations=out)


def _name(message: Message) -> str:
    return message.sender.get_username() if message.sender else "someone"


def _title(conversation: Conversation, user_id: int, news: list[Message]) -> str:
    if conversation.title:
        return conversation.title
    if conversation.kind == Conversation.Kind.DIRECT:
        return _name(news[0])
    return f"Conversation {conversation.pk}"


def _first_line(body: str) -> str:
    line = next((part for part in body.strip().splitlines() if part.strip()), "")
    cap = settings.LIMITS["NOTIFY_DIGEST_LINE_CHARS"]
    return line if len(line) <= cap else line[: cap - 1] + "…"


def settings_get(*, user_id: int) -> dict:
    """Return the user's notification settings and muted conversation ids."""
    row = NotificationSettings.objects.filter(user_id=user_id).first()
    muted = Mute.objects.filter(user_id=user_id).order_by("conversation_id")
    return {
        "email": row.email if row else True,
        "push": row.push if row else True,
        "muted": list(muted.values_list("conversation_id", flat=True)),
    }


def push_subscriptions(*, user_id: int) -> list[PushSubscription]:
    """Return the user's Web Push subscriptions, newest first."""
    return list(PushSubscription.objects.filter(user_id=user_id).order_by("-created_at"))
