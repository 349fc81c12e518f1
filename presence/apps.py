from django.apps import AppConfig


class PresenceConfig(AppConfig):
    name = "presence"

    def ready(self) -> None:
        # Register the gateway hooks and frames, the unread counts' signal receiver, and the
        # receivers that make presence follow blocks and accepted requests.
        from . import gateway, handlers, receipts, signals  # noqa: F401
