"""Full-text search of messages (docs/subsystems/search.md).

On PostgreSQL:

- ``switchboard_search_config(language)``: an ISO 639-1 code to the text search
  configuration PostgreSQL has for it, ``simple`` for every other code (and ""). Declared
  IMMUTABLE, which it is for a given server (the built-in configurations never change
  under it), so a generated column may call it. Only the configurations this server has
  are named (``pg_ts_config`` at migration time).
- ``conversations_message.search``: a stored generated column,
  ``to_tsvector(switchboard_search_config(language), body)``. PostgreSQL computes it in
  the writer's one INSERT and again on every edit or deletion of the body: no statement of
  the message path names it. Adding it rewrites the table (under its exclusive lock):
  on a large table, run this migration in a quiet window.
- ``msg_search``: its GIN index, built concurrently (the migration is not atomic), with
  ``fastupdate`` on (a new message's entries go to the pending list: a direct insertion
  made a batch of 50 +86 % slower, against +34 %) and a pending list of 256 kB instead of
  4 MB: the insert that finds the list full merges it, and a 4 MB list is ~14,000
  messages (a ~150 ms stall of one writer batch on a loaded machine), 256 kB ~1,000 (~20
  ms), for the same total (docs/subsystems/search.md).
- ``switchboard_search_share(query)``: the planner's estimate of the share of all
  messages a query matches, and ``switchboard_search_newest(conversation, query, n)``, a
  conversation's newest n matches (the search's plan for common queries).

The ``language`` column (the author's profile language at send time) gets a constant
default: no rewrite of its own. Other databases (SQLite under ``make run``) get the
column and no search index; the search there scans (``conversations.search``).
"""

from django.db import migrations, models

# ISO 639-1 code -> PostgreSQL's built-in text search configuration (PostgreSQL 15's list;
# the ones a server lacks are left out when the function is made).
CONFIGS = {
    "ar": "arabic",
    "hy": "armenian",
    "eu": "basque",
    "ca": "catalan",
    "da": "danish",
    "nl": "dutch",
    "en": "english",
    "fi": "finnish",
    "fr": "french",
    "de": "german",
    "el": "greek",
    "hi": "hindi",
    "hu": "hungarian",
    "id": "indonesian",
    "ga": "irish",
    "it": "italian",
    "lt": "lithuanian",
    "ne": "nepali",
    "no": "norwegian",
    "nb": "norwegian",
    "nn": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "es": "spanish",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}

# The planner's estimate of the share of all messages a query matches (from the search
# column's statistics, most common lexemes and their frequencies, kept by ANALYZE): the
# search takes its bounded plan for a common query (conversations.search). Planning a
# one-table statement: no message is read. NULL before the table's first ANALYZE.
# VOLATILE: PostgreSQL allows EXPLAIN in no other kind of function.
SHARE_FUNCTION = """
CREATE FUNCTION switchboard_search_share(q tsquery) RETURNS real
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    plan json;
    total real;
BEGIN
    SELECT reltuples INTO total FROM pg_class WHERE oid = 'conversations_message'::regclass;
    IF total IS NULL OR total < 1 THEN
        RETURN NULL;
    END IF;
    EXECUTE format(
        'EXPLAIN (FORMAT JSON) SELECT 1 FROM conversations_message WHERE search @@ %L::tsquery', q
    ) INTO plan;
    RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::real / total;
END
$$
"""

# A conversation's newest ``n`` messages matching ``q`` (not deleted), newest first: its
# messages read backward along the (conversation_id, seq) index, one by one, until the
# n-th match (the search's plan for a common query). A loop, not a LIMIT-ed statement: the
# planner, expecting fewer matches than n in an average conversation, would read the
# whole conversation and sort it; a loop's cursor is planned for its first rows.
NEWEST_FUNCTION = """
CREATE FUNCTION switchboard_search_newest(conv bigint, q tsquery, n integer)
RETURNS SETOF conversations_message LANGUAGE plpgsql STABLE AS $$
DECLARE
    r conversations_message%ROWTYPE;
BEGIN
    IF n < 1 THEN
        RETURN;
    END IF;
    FOR r IN SELECT * FROM conversations_message WHERE conversation_id = conv
             ORDER BY seq DESC LOOP
        IF r.deleted_at IS NULL AND r.search @@ q THEN
            RETURN NEXT r;
            n := n - 1;
            EXIT WHEN n = 0;
        END IF;
    END LOOP;
END
$$
"""


def _forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT cfgname FROM pg_ts_config")
        present = {row[0] for row in cursor.fetchall()}
        branches = " ".join(
            f"WHEN '{code}' THEN '{name}'::regconfig"
            for code, name in sorted(CONFIGS.items())
            if name in present
        )
        cursor.execute(
            "CREATE FUNCTION switchboard_search_config(language text) RETURNS regconfig "
            "LANGUAGE sql IMMUTABLE PARALLEL SAFE "
            f"AS $$ SELECT CASE language {branches} ELSE 'simple'::regconfig END $$"
        )
        cursor.execute(
            "ALTER TABLE conversations_message ADD COLUMN search tsvector GENERATED ALWAYS AS "
            "(to_tsvector(switchboard_search_config(language), body)) STORED"
        )
        cursor.execute(
            "CREATE INDEX CONCURRENTLY msg_search ON conversations_message USING gin (search) "
            "WITH (gin_pending_list_limit = 256)"
        )
        cursor.execute(SHARE_FUNCTION)
        cursor.execute(NEWEST_FUNCTION)


def _backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "DROP FUNCTION IF EXISTS switchboard_search_newest(bigint, tsquery, integer)"
        )
        cursor.execute("DROP FUNCTION IF EXISTS switchboard_search_share(tsquery)")
        cursor.execute("DROP INDEX CONCURRENTLY IF EXISTS msg_search")
        cursor.execute("ALTER TABLE conversations_message DROP COLUMN IF EXISTS search")
        cursor.execute("DROP FUNCTION IF EXISTS switchboard_search_config(text)")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("conversations", "0005_change_seq"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="language",
            field=models.CharField(blank=True, db_default="", default="", max_length=2),
        ),
        migrations.RunPython(_forwards, _backwards, elidable=False),
    ]
