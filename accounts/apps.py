from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from . import gateway  # noqa: F401  (registers the WebSocket authenticators)
