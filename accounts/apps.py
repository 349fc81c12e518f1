from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        # Registers the WebSocket authenticators, and the receivers that close revoked sockets.
        from . import gateway, signals  # noqa: F401
