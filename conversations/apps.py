from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"

    def ready(self) -> None:
        from . import gateway, handlers  # noqa: F401  (register hooks and frames)
