"""Reads the browser pages need beyond the public REST API."""

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q

from profiles.models import Profile

User = get_user_model()


def user_search(*, user_id: int, prefix: str, limit: int | None = None) -> list[dict]:
    """Return active users (not me) whose username or display name starts with ``prefix``."""
    prefix = (prefix or "").strip()
    if not prefix:
        return []
    bound = settings.LIMITS["USER_SEARCH_RESULTS"]
    limit = min(limit or bound, bound)
    users = (
        User.objects.filter(is_active=True)
        .exclude(pk=user_id)
        .filter(Q(username__istartswith=prefix) | Q(profile__display_name__istartswith=prefix))
        .order_by("username")[:limit]
    )
    names = dict(Profile.objects.filter(user__in=users).values_list("user_id", "display_name"))
    return [
        {"user_id": u.pk, "username": u.get_username(), "display_name": names.get(u.pk) or ""}
        for u in users
    ]


def page_context(*, user: AbstractBaseUser) -> dict[str, Any]:
    """Return what every app page hands to its scripts (rendered with json_script)."""
    # django-stubs types the lookup as the configured user model, not as AbstractBaseUser.
    profile = Profile.objects.filter(user=user).only("display_name").first()  # type: ignore[misc]
    return {
        "user_id": user.pk,
        "username": user.get_username(),
        "display_name": (profile.display_name if profile else "") or user.get_username(),
        "limits": {
            "message_max_chars": settings.LIMITS["MESSAGE_MAX_CHARS"],
            "history_page": settings.LIMITS["HISTORY_PAGE_DEFAULT"],
            "history_page_max": settings.LIMITS["HISTORY_PAGE_MAX"],
            "search_query_max_chars": settings.LIMITS["SEARCH_QUERY_MAX_CHARS"],
            "group_title_max_chars": settings.LIMITS["GROUP_TITLE_MAX_CHARS"],
            "interests_per_user": settings.LIMITS["INTERESTS_PER_USER"],
            # Bounds of other subsystems the scripts follow; absent ones fall back in JS.
            "typing_resend_seconds": settings.LIMITS.get("TYPING_RESEND_SECONDS"),
            "typing_expire_seconds": settings.LIMITS.get("TYPING_EXPIRE_SECONDS"),
        },
    }
