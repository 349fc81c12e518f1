from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"

    def ready(self):
        from . import task_signals  # noqa: F401  (connects Celery signal handlers)
