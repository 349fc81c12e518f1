"""Change numbers: edits and deletions get a per-conversation number, so ``sync`` can
replay those a client missed (docs/subsystems/messaging.md, "Resume").

Safe on a live table of existing rows: both columns get a constant database default
(PostgreSQL 11+ stores it in the catalogue, no table rewrite), existing messages read as
never changed (0), and the index is partial over changed messages, so it starts empty and
is built without blocking writes (``CREATE INDEX CONCURRENTLY`` on PostgreSQL, hence the
migration is not atomic).
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """``AddIndexConcurrently`` on PostgreSQL; a plain ``AddIndex`` elsewhere (SQLite under
    ``make run``, which has no concurrent build and no concurrent writers to spare)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(
            self, app_label, schema_editor, from_state, to_state
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(
            self, app_label, schema_editor, from_state, to_state
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("conversations", "0004_members_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="last_change_seq",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="message",
            name="change_seq",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="message",
            index=models.Index(
                condition=models.Q(("change_seq__gt", 0)),
                fields=["conversation", "change_seq"],
                name="msg_changes",
            ),
        ),
    ]
