from django.apps import AppConfig


class PresenceConfig(AppConfig):
    name = "presence"

    def ready(self) -> None:
        # Register the gateway hooks and frames, and the unread counts' signal receiver.
        from . import gateway, handlers, receipts  # noqa: F401
