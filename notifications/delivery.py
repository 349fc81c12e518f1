"""Sending a notification: ``absence_notify`` is the one place one is sent (the email digest
and Web Push). Only the worker imports this module: pywebpush (with requests and aiohttp)
takes seconds to import on a loaded machine, which no web process or ``manage.py`` command
should pay.

The claim is the insert of the absence's ``Absence`` row (unique per user and
``away_since``) inside the transaction that sends the email: two workers racing on one
absence (two scans, a retry, a duplicated message) both try the insert; the second waits on
the unique index until the first commits and then finds it taken. If the email fails, the
transaction rolls back and the task's retry claims it again: nobody is told twice, nobody
is silently skipped by a failed send.
"""

import datetime
import json
import logging

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from pywebpush import WebPushException, webpush

from . import selectors
from .models import Absence, PushSubscription
from .services import app_url, conversation_url, unsubscribe_token
from .vapid import vapid

logger = logging.getLogger(__name__)

# A push service's answers that mean the subscription is gone for good (RFC 8030 §7.3).
GONE_STATUSES = {404, 410}


def absence_notify(*, user_id: int, away_since: datetime.datetime) -> Absence | None:
    """Tell an away member about their news once for this absence; return the claim row."""
    since = selectors.away_since(user_id=user_id)
    if since is None or since != away_since:
        return None  # back online, or back and gone again: the next scan sees the new absence
    prefs = selectors.settings_get(user_id=user_id)
    digest = selectors.digest_get(user_id=user_id, since=away_since)
    if not digest.conversations or not (prefs["email"] or prefs["push"]):
        return None
    user = get_user_model().objects.get(pk=user_id)
    email_to = user.email if prefs["email"] else ""
    try:
        with transaction.atomic():
            absence = Absence.objects.create(
                user_id=user_id, away_since=away_since, messages=digest.unread,
                emailed=bool(email_to),
            )  # fmt: skip
            if email_to:
                _digest_message(user=user, digest=digest).send()
    except IntegrityError:
        return None  # another worker told them
    if prefs["push"]:
        delivered = push_digest(digest=digest)
        if delivered:
            Absence.objects.filter(pk=absence.pk).update(pushed=delivered)
            absence.pushed = delivered
    logger.info(
        "notified user=%s conversations=%s unread=%s email=%s push=%s",
        user_id, len(digest.conversations), digest.unread, absence.emailed, absence.pushed,
    )  # fmt: skip
    return absence


def _digest_message(*, user: User, digest: selectors.Digest) -> EmailMultiAlternatives:
    unsubscribe = app_url(
        reverse("notifications-unsubscribe", args=[unsubscribe_token(user_id=user.pk)])
    )
    context = {
        "user": user,
        "digest": digest,
        "conversations": [
            {"c": c, "url": conversation_url(c.conversation_id)} for c in digest.conversations
        ],
        "app_url": app_url("/"),
        "settings_url": app_url(reverse("profile-edit")),
        "unsubscribe_url": unsubscribe,
    }
    n = digest.unread
    subject = f"{n} unread message{'s' if n != 1 else ''} on Switchboard"
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("notifications/digest.txt", context),
        to=[user.email],
        headers={
            # RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs
            # "List-Unsubscribe=One-Click" to this URL.
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
        },
    )
    message.attach_alternative(render_to_string("notifications/digest.html", context), "text/html")
    return message


def push_payload(*, digest: selectors.Digest) -> dict:
    """Return what the service worker shows: a title, a body, the conversation to open."""
    first = digest.conversations[0]
    n = digest.unread
    if len(digest.conversations) == 1:
        title = first.title
    else:
        title = f"{n} unread messages in {len(digest.conversations)} conversations"
    sender, line = first.lines[0]
    return {
        "title": title,
        "body": f"{sender}: {line}",
        "url": reverse("chat-conversation", args=[first.conversation_id]),
        "tag": "switchboard-unread",
        "unread": n,
    }


def push_digest(*, digest: selectors.Digest) -> int:
    """Push the digest to every device of the user; return how many push services took it."""
    key = vapid()
    if key is None:
        return 0
    data = json.dumps(push_payload(digest=digest))
    delivered = 0
    for sub in selectors.push_subscriptions(user_id=digest.user_id):
        if push_send(subscription=sub, data=data):
            delivered += 1
    return delivered


def push_send(*, subscription: PushSubscription, data: str) -> bool:
    """Send one push (aes128gcm, VAPID); drop the subscription if the service says it is gone."""
    key = vapid()
    if key is None:
        return False
    info = {
        "endpoint": subscription.endpoint,
        "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
    }
    try:
        webpush(
            subscription_info=info,
            data=data,
            vapid_private_key=key,
            vapid_claims={"sub": settings.VAPID_SUBJECT},
            content_encoding="aes128gcm",
            ttl=settings.LIMITS["PUSH_TTL_SECONDS"],
            timeout=settings.LIMITS["PUSH_TIMEOUT_SECONDS"],
        )
    except WebPushException as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in GONE_STATUSES:
            PushSubscription.objects.filter(pk=subscription.pk).delete()
            logger.info("push subscription %s gone (%s): removed", subscription.pk, status)
        else:
            logger.warning("push to subscription %s failed: %s", subscription.pk, status)
        return False
    except (requests.RequestException, ValueError) as exc:
        # An unreachable push service, or keys it cannot encrypt to: this device misses
        # the push, the others still get theirs.
        logger.warning("push to subscription %s failed: %s", subscription.pk, exc)
        return False
    PushSubscription.objects.filter(pk=subscription.pk).update(last_success_at=timezone.now())
    return True
