from django.apps import AppConfig


class RelationsConfig(AppConfig):
    """Relations between people (blocks) that conversations and Meet both consult."""

    name = "relations"
