"""Interest names as users type them, normalised to one slug (pure: no database)."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.text import slugify

from core.text import text_storable

_SPACES = re.compile(r"\s+")


def interest_normalize(*, text: object) -> tuple[str, str]:
    """Return ``(slug, name)`` for a typed interest, or raise ``ValidationError``."""
    if not isinstance(text, str) or not text_storable(text):
        raise ValidationError("Each interest must be plain text.")
    name = _SPACES.sub(" ", text).strip().lower()
    limit = settings.LIMITS["INTEREST_MAX_LENGTH"]
    if not name:
        raise ValidationError("An interest cannot be empty.")
    if len(name) > limit:
        raise ValidationError(f"An interest has at most {limit} characters.")
    slug = slugify(name, allow_unicode=True)
    if not slug:
        raise ValidationError(f"'{name}' has no letters or digits.")
    if len(slug) > limit:  # NFKC normalisation can make the slug longer than the name
        raise ValidationError(f"An interest has at most {limit} characters.")
    return slug, name
