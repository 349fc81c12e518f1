"""Blocks moved from Meet (``matching.Block``) to relations: copy the rows over.

Runs before ``matching.0002`` drops the old table; a database created after the move has
no rows to copy. Reversible: going back copies them home.
"""

from django.db import migrations

FIELDS = ("id", "blocker_id", "blocked_id", "match_id", "created_at")


def _copy(apps, source: tuple[str, str], target: tuple[str, str]) -> None:
    old, new = apps.get_model(*source), apps.get_model(*target)
    rows = [new(**{f: getattr(b, f) for f in FIELDS}) for b in old.objects.all().iterator()]
    new.objects.bulk_create(rows, batch_size=1000)


def forward(apps, schema_editor) -> None:
    _copy(apps, ("matching", "Block"), ("relations", "Block"))
    if schema_editor.connection.vendor == "postgresql":  # ids were copied: move the sequence on
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('relations_block', 'id'), "
                "COALESCE((SELECT MAX(id) FROM relations_block), 0) + 1, false)"
            )


def backward(apps, schema_editor) -> None:
    _copy(apps, ("relations", "Block"), ("matching", "Block"))


class Migration(migrations.Migration):
    dependencies = [
        ("relations", "0001_initial"),
        ("matching", "0001_initial"),
    ]

    operations = [migrations.RunPython(forward, backward)]
