from django.apps import AppConfig


class MatchingConfig(AppConfig):
    name = "matching"
    verbose_name = "Meet"

    def ready(self) -> None:
        from . import gateway, handlers  # noqa: F401  (register hooks and frames)
