"""Reads of profiles and interests."""

import hashlib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count, Q

from core.cache import cached

from .interests import interest_normalize
from .models import Interest, Profile

User = get_user_model()


def profile_get(*, user_id: int) -> Profile | None:
    """Return a user's profile (created on first read), or None for an unknown user."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return None
    profile = Profile.objects.ensure(user=user)
    return Profile.objects.select_related("user").prefetch_related("interests").get(pk=profile.pk)


def profile_public(*, profile: Profile, with_last_seen: bool = False) -> dict:
    """Return what anyone signed in may see of a profile.

    ``last_seen`` is null unless ``with_last_seen``: only the user and their contacts may
    see it (``presence.api.PublicProfileView`` decides; docs/security.md).
    """
    last_seen = profile.last_seen if with_last_seen else None
    return {
        "user_id": profile.user_id,
        "username": profile.user.get_username(),
        "display_name": profile.display_name,
        "language": profile.language,
        "region": profile.region,
        "interests": [i.name for i in profile.interests.all()],
        "last_seen": last_seen.isoformat() if last_seen else None,
    }


@cached(
    key=lambda *, user_id: f"profile:public:v1:{user_id}",
    ttl=lambda: settings.TTLS["PROFILE_PUBLIC"],
)
def profile_public_get(*, user_id: int) -> dict | None:
    """Return a user's public profile, cached; None for an unknown or inactive user.

    ``profiles.services.profile_update`` invalidates it; ``last_seen`` in it may lag by up
    to the TTL (presence gives the live state), and is for the readers allowed to see it
    (contacts): callers take it out for the others.
    """
    profile = profile_get(user_id=user_id)
    return None if profile is None else profile_public(profile=profile, with_last_seen=True)


def _interest_search_key(*, prefix: str = "") -> str:
    # Any prefix longer than an interest gives no result, so longer ones share one entry.
    text = (prefix or "").strip().lower()[: settings.LIMITS["INTEREST_MAX_LENGTH"] + 1]
    return f"interests:search:v1:{hashlib.sha256(text.encode()).hexdigest()[:24]}"


@cached(key=_interest_search_key, ttl=lambda: settings.TTLS["INTEREST_LIST"])
def interest_search_public(*, prefix: str = "") -> list[dict]:
    """Return ``interest_list`` as plain rows, cached (popularity may lag by the TTL)."""
    return [
        # ``popularity`` is annotated by interest_list's query.
        {"slug": i.slug, "name": i.name, "popularity": i.popularity}  # type: ignore[attr-defined]
        for i in interest_list(prefix=prefix)
    ]


def interest_list(*, prefix: str = "", limit: int | None = None) -> list[Interest]:
    """Return interests whose slug or name starts with ``prefix``, most popular first."""
    limit = min(
        limit or settings.LIMITS["INTEREST_SEARCH_RESULTS"], settings.LIMITS["INTEREST_SEARCH_MAX"]
    )
    qs = Interest.objects.annotate(popularity=Count("profiles"))
    prefix = (prefix or "").strip()
    if prefix:
        try:
            slug, name = interest_normalize(text=prefix)
        except ValidationError:
            return []
        qs = qs.filter(Q(slug__startswith=slug) | Q(name__startswith=name))
    return list(qs.order_by("-popularity", "slug")[:limit])
