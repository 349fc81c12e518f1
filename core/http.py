"""Request types for views that require a signed-in user, for the type checker.

Django and DRF type ``request.user`` as a user or ``AnonymousUser``. Behind ``login_required``
(pages) or DRF's ``IsAuthenticated`` (the API's default permission) it is always a user:
annotate such a view's ``request`` with one of these (django-stubs' advice). Neither is ever
instantiated. ``User`` is the user model: ``AUTH_USER_MODEL`` is Django's own.
"""

from django.contrib.auth.models import User
from django.http import HttpRequest
from rest_framework.request import Request


class AuthenticatedHttpRequest(HttpRequest):
    """A page request behind ``login_required``."""

    user: User


class AuthenticatedRequest(Request):
    """An API request past ``IsAuthenticated``."""

    user: User
