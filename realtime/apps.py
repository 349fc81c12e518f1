from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """The WebSocket gateway (docs/architecture.md): a transport that imports no app."""

    name = "realtime"

    def ready(self) -> None:
        from . import handlers  # noqa: F401  (registers the gateway's own frames)
