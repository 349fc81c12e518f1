"""Revocations close sockets: log-out, a password change, a deleted API token.

A socket is authenticated once, at connect; these receivers tell the sockets opened with a
credential that it is gone (``services.sockets_close``), whoever revoked it: the REST API,
Django's log-out view, the admin, a shell. Issue: Hardening, 11.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from core.router import credential_id

from . import services

User = get_user_model()
# Set by ``_password_compare`` on an instance whose save changes the password hash.
_PASSWORD_CHANGED = "_switchboard_password_changed"


@receiver(user_logged_out)
def _logged_out(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    session_key = request.session.session_key if hasattr(request, "session") else None
    if user is not None and session_key:  # the key is still there: the flush comes next
        services.sockets_close(
            user_id=user.pk, reason="logout", credential=credential_id("session", session_key)
        )


@receiver(post_delete, sender=Token)
def _token_deleted(sender: Any, instance: Token, **kwargs: Any) -> None:
    services.sockets_close(
        user_id=instance.user_id,
        reason="token_revoked",
        credential=credential_id("token", instance.key),
    )


@receiver(pre_save, sender=User)
def _password_compare(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """Note whether this save changes the password hash (however it was set).

    Django signs out every other session when the hash changes; their sockets must go too.
    A save that names its fields without ``password`` (``last_login`` at log-in) is skipped
    without a query.
    """
    update_fields = kwargs.get("update_fields")
    if raw or instance.pk is None:
        return
    if update_fields is not None and "password" not in update_fields:
        return
    old = User.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    setattr(instance, _PASSWORD_CHANGED, old is not None and old != instance.password)


@receiver(post_save, sender=User)
def _password_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    if getattr(instance, _PASSWORD_CHANGED, False):
        setattr(instance, _PASSWORD_CHANGED, False)
        # Every socket: the one session Django keeps (update_session_auth_hash) reconnects.
        services.sockets_close(user_id=instance.pk, reason="password_changed")
