from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import models

from .choices import REGION_CHOICES


class Interest(models.Model):
    """A normalised interest: one row per slug, whatever case or spacing users typed."""

    slug = models.SlugField(max_length=settings.LIMITS["INTEREST_MAX_LENGTH"], unique=True)
    name = models.CharField(max_length=settings.LIMITS["INTEREST_MAX_LENGTH"])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class ProfileManager(models.Manager["Profile"]):
    def ensure(self, *, user: AbstractBaseUser) -> "Profile":
        """Return the user's profile, creating an empty one the first time (profiles are
        created lazily: by sign-up, the first read, or presence's first ``last_seen``)."""
        profile, _ = self.get_or_create(user=user, defaults={"display_name": user.get_username()})
        return profile


class Profile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    display_name = models.CharField(
        max_length=settings.LIMITS["DISPLAY_NAME_MAX_LENGTH"], blank=True
    )
    language = models.CharField(max_length=2, default="en")
    region = models.CharField(max_length=20, choices=REGION_CHOICES, blank=True)
    interests = models.ManyToManyField(Interest, blank=True, related_name="profiles")
    last_seen = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProfileManager()

    def __str__(self) -> str:
        return self.display_name or self.user.get_username()
