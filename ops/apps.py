from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"

    def ready(self) -> None:
        # Connect Celery's signal handlers; register the socket-counting gateway hooks.
        from . import gateway, task_signals  # noqa: F401
