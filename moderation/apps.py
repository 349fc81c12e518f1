from django.apps import AppConfig


class ModerationConfig(AppConfig):
    name = "moderation"

    def ready(self) -> None:
        # Accounts asks "is this user restricted?" at log-in, token use and connect; it sits
        # below this app, so the answer is registered from here (accounts/restrictions.py).
        from accounts.restrictions import restriction_checker

        from . import selectors

        restriction_checker(check=selectors.restriction_get, acheck=selectors.arestriction_get)
