"""REST authentication: DRF's token scheme, refusing a suspended or banned account."""

from typing import Any

from rest_framework import authentication

from .restrictions import user_unrestricted_check


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``; a sanctioned owner gets ``suspended`` (403).

    The token is kept, not deleted: it works again when a suspension ends.
    """

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        user, token = super().authenticate_credentials(key)
        user_unrestricted_check(user_id=user.pk)
        return user, token
