"""Writes of notifications: settings, mutes, Web Push subscriptions, the signed unsubscribe
link. Sending lives in ``notifications.delivery`` (the worker's side)."""

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import transaction
from django.urls import reverse

from conversations.models import Membership
from core.errors import Invalid, NotFound

from . import selectors
from .models import Mute, NotificationSettings, PushSubscription

UNSUBSCRIBE_SALT = "notifications.unsubscribe"


def app_url(path: str) -> str:
    """Return ``path`` of the site as its users reach it (``SITE_URL``)."""
    return settings.SITE_URL + path


def conversation_url(conversation_id: int) -> str:
    return app_url(reverse("chat-conversation", args=[conversation_id]))


def unsubscribe_token(*, user_id: int) -> str:
    """Return the signed token of the one-click unsubscribe link (no expiry: old mail works)."""
    return signing.dumps({"u": user_id}, salt=UNSUBSCRIBE_SALT)


def unsubscribe_user_id(*, token: str) -> int:
    """Return the user of an unsubscribe token, or raise ``Invalid``."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature as exc:
        raise Invalid("This unsubscribe link is not valid.") from exc
    return int(data["u"])


def settings_update(*, user_id: int, email: bool | None = None, push: bool | None = None) -> dict:
    """Change the user's channels (both off: "none"); return the settings."""
    changes = {k: v for k, v in {"email": email, "push": push}.items() if v is not None}
    if changes:
        NotificationSettings.objects.update_or_create(user_id=user_id, defaults=changes)
    return selectors.settings_get(user_id=user_id)


def mute_set(*, user_id: int, conversation_id: int, muted: bool) -> dict:
    """Mute or unmute a conversation the user is a member of; return the settings."""
    if not Membership.objects.filter(user_id=user_id, conversation_id=conversation_id).exists():
        raise NotFound("No such conversation.")
    if muted:
        Mute.objects.get_or_create(user_id=user_id, conversation_id=conversation_id)
    else:
        Mute.objects.filter(user_id=user_id, conversation_id=conversation_id).delete()
    return selectors.settings_get(user_id=user_id)


def _key_check(value: str, name: str, size: int) -> None:
    try:
        raw = signing.b64_decode(value.encode())
    except (ValueError, TypeError) as exc:
        raise Invalid(
            f"keys.{name} is not base64url.", fields={"keys": {name: "not base64url"}}
        ) from exc
    if len(raw) != size:
        raise Invalid(
            f"keys.{name} must be {size} bytes.", fields={"keys": {name: f"not {size} bytes"}}
        )


def _endpoint_check(endpoint: str) -> None:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Invalid("endpoint must be an http(s) URL.", fields={"endpoint": "not an http(s) URL"})
    if settings.PUSH_ALLOW_LOCAL_ENDPOINTS:
        return
    # The worker POSTs to this URL: not to this network's own machines (a push service is
    # a public https host; browsers give nothing else).
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    if parts.scheme != "https" or literal or host == "localhost" or "." not in host:
        raise Invalid(
            "endpoint must be an https URL of a push service.",
            fields={"endpoint": "not an https URL of a push service"},
        )


def subscription_save(
    *, user_id: int, endpoint: str, p256dh: str, auth: str, user_agent: str = ""
) -> PushSubscription:
    """Store a browser's push subscription (one row per endpoint); keep the newest N per user."""
    _endpoint_check(endpoint)
    _key_check(p256dh, "p256dh", 65)  # an uncompressed P-256 point
    _key_check(auth, "auth", 16)
    with transaction.atomic():
        sub, _ = PushSubscription.objects.update_or_create(
            endpoint=endpoint,
            defaults={
                "user_id": user_id, "p256dh": p256dh, "auth": auth,
                "user_agent": user_agent[:300],
            },
        )  # fmt: skip
        keep = settings.LIMITS["PUSH_SUBSCRIPTIONS_PER_USER"]
        stale = PushSubscription.objects.filter(user_id=user_id).order_by("-created_at", "-pk")[
            keep:
        ]
        PushSubscription.objects.filter(pk__in=list(stale.values_list("pk", flat=True))).delete()
    return sub


def subscription_delete(*, user_id: int, endpoint: str) -> bool:
    """Forget a browser's subscription; return whether there was one."""
    deleted, _ = PushSubscription.objects.filter(user_id=user_id, endpoint=endpoint).delete()
    return bool(deleted)


def unsubscribe_email(*, token: str) -> int:
    """Turn email notifications off for the user of an unsubscribe token; return the user."""
    user_id = unsubscribe_user_id(token=token)
    if not get_user_model().objects.filter(pk=user_id).exists():
        raise Invalid("This unsubscribe link is not valid.")
    settings_update(user_id=user_id, email=False)
    return user_id
