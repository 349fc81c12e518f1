"""``switchboard_batch_retry()``: how the batch statement of ``conversations.writer`` aborts.

The writer sends ``BEGIN``, the statement and ``COMMIT`` to PostgreSQL in one round trip.
When a concurrent retry of one of the batch's sends was stored meanwhile, the seqs already
handed out would leave a gap, so the statement must fail instead of committing: this
function raises ``serialization_failure`` (SQLSTATE 40001, "try the transaction again"),
the writer rolls back and tries the batch again. PostgreSQL only (other databases store a
batch one message at a time).
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION switchboard_batch_retry() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'serialization_failure',
        MESSAGE = 'a concurrent retry of a send in this batch was stored first';
END
$$
"""
DROP = "DROP FUNCTION IF EXISTS switchboard_batch_retry()"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("conversations", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
