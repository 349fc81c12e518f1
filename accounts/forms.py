"""The log-in page's form: Django's, refusing a suspended or banned account by name."""

from typing import Any

from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from .restrictions import user_restriction


class LoginForm(AuthenticationForm):
    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        restriction = user_restriction(user_id=user.pk)
        if restriction is not None:
            raise ValidationError(restriction.message(), code="suspended")
