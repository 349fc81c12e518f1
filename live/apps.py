from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "live"

    def ready(self) -> None:
        from . import handlers  # noqa: F401  (registers the live feed frames)
