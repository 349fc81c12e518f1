"""Writes to profiles and interests."""

from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from core.text import text_storable

from . import selectors
from .choices import LANGUAGE_CODES, REGIONS
from .interests import interest_normalize
from .models import Interest, Profile

_UNSET = object()


def interests_get_or_create(*, texts: list[Any]) -> list[Interest]:
    """Return the interests named by ``texts``, creating the new ones, deduplicated."""
    by_slug: dict[str, str] = {}
    for text in texts:
        slug, name = interest_normalize(text=text)
        by_slug.setdefault(slug, name)
    existing = {i.slug: i for i in Interest.objects.filter(slug__in=by_slug)}
    missing = [Interest(slug=s, name=n) for s, n in by_slug.items() if s not in existing]
    if missing:
        Interest.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {i.slug: i for i in Interest.objects.filter(slug__in=by_slug)}
    return [existing[s] for s in by_slug]


def profile_update(
    *,
    user: AbstractBaseUser,
    display_name: object = _UNSET,
    language: object = _UNSET,
    region: object = _UNSET,
    interests: object = _UNSET,
) -> Profile:
    """Validate and apply a partial profile update, all fields or none."""
    errors: dict[str, str] = {}
    changes: dict[str, object] = {}
    if display_name is not _UNSET:
        limit = settings.LIMITS["DISPLAY_NAME_MAX_LENGTH"]
        if (
            not isinstance(display_name, str)
            or not display_name.strip()
            or not text_storable(display_name)
        ):
            errors["display_name"] = "Enter a display name."
        elif len(display_name.strip()) > limit:
            errors["display_name"] = f"At most {limit} characters."
        else:
            changes["display_name"] = display_name.strip()
    if language is not _UNSET:
        if not isinstance(language, str) or language.lower() not in LANGUAGE_CODES:
            errors["language"] = "Use an ISO 639-1 language code, such as 'en' or 'pt'."
        else:
            changes["language"] = language.lower()
    if region is not _UNSET:
        if region in ("", None):
            changes["region"] = ""
        elif not isinstance(region, str) or region not in REGIONS:
            errors["region"] = "Use one of: " + ", ".join(sorted(REGIONS)) + "."
        else:
            changes["region"] = region
    interest_rows = None
    if interests is not _UNSET:
        limit = settings.LIMITS["INTERESTS_PER_USER"]
        if not isinstance(interests, list):
            errors["interests"] = "Send a list of interests."
        else:
            try:
                slugs = {interest_normalize(text=t)[0] for t in interests}
            except ValidationError as exc:
                errors["interests"] = exc.messages[0]
            else:
                if len(slugs) > limit:
                    errors["interests"] = f"At most {limit} interests."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        profile = Profile.objects.ensure(user=user)
        for field, value in changes.items():
            setattr(profile, field, value)
        profile.save()
        if interests is not _UNSET:
            # A list: anything else was an error above.
            interest_rows = interests_get_or_create(texts=cast(list[Any], interests))
            profile.interests.set(interest_rows)
        # After commit: a reader must not re-cache the rows this transaction replaces.
        transaction.on_commit(lambda: profile_public_invalidate(user_id=user.pk))
    return profile


def profile_public_invalidate(*, user_id: int) -> None:
    """Drop a user's cached public profile (call after the change has committed)."""
    selectors.profile_public_get.invalidate(user_id=user_id)
