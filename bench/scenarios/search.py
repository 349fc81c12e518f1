"""Search: full-text search latency over 1,000,000 messages, against an ILIKE scan (issue #17).

The scenario loads its data into a database of its own (``sb_bench_search_<random>``,
migrated, dropped at the end, also when it fails), over one connection:

- 2,000 users (profiles: 55 % English, 15 % French, 10 % German, 10 % Spanish, 10 %
  Japanese, which PostgreSQL has no configuration for: ``simple``), 3,000 direct
  conversations and 400 groups of 5 to 50 members;
- 1,000,000 messages (100,000 with ``--quick``) in one ``INSERT ... SELECT`` over
  ``generate_series``: each body two fragments of its sender's language, words drawn by
  Zipf's law (s = 1.1) from a 6,000-word vocabulary per language, with inflected forms
  ("-ing", "-ed", "-s"); groups carry 60 % of the messages; 1 % deleted. The GIN index
  is built after the load, then ``VACUUM ANALYZE``.

Then, for searchers drawn among the users who are in conversations, varied queries
(common, medium and rare words, two words, a phrase, ``or``, ``-word``, an inflected form,
a word nobody wrote, one conversation only) go through the API's statement
(``conversations.search.search_run``: the first page, 20 results, ranked, with snippets;
a common query ranks each conversation's newest matches), and the same words through the
naive baseline: ``body ILIKE '%word%'`` over the searcher's conversations, newest first,
20 rows.

Target: the full-text p99 < 50 ms. The ILIKE p99 is reported beside it.
"""

import random
import secrets
import subprocess
import sys
import time
from pathlib import Path

from bench import common

MESSAGES = 1_000_000
USERS = 2_000
DIRECT = 3_000
GROUPS = 400
VOCABULARY = 6_000
FRAGMENTS_PER_LANGUAGE = 8_000
ZIPF_S = 1.1
LANGUAGES = [("en", 0.55), ("fr", 0.15), ("de", 0.10), ("es", 0.10), ("ja", 0.10)]
FULL = {"messages": MESSAGES, "queries": 1_000, "baseline_queries": 150}
QUICK = {"messages": MESSAGES // 10, "queries": 200, "baseline_queries": 40}
TARGET_P99_MS = 50.0
PAGE = 20


def _vocabulary(language: str, rng: random.Random) -> list[str]:
    """Invented words, distinct per language (syllables of its own), most frequent first."""
    consonants = {"en": "bcdfghlmnprstw", "fr": "bcdfjlmnprstv", "de": "bdfghklmnrstwz",
                  "es": "bcdglmnprstv", "ja": "kmnrstwyh"}[language]  # fmt: skip
    vowels = {"en": "aeiou", "fr": "aeiouy", "de": "aeiou", "es": "aeio", "ja": "aeiou"}[language]
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCABULARY:
        word = "".join(
            rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4))
        )
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def _fragments(language: str, words: list[str], rng: random.Random) -> list[str]:
    weights = [1 / (rank + 1) ** ZIPF_S for rank in range(len(words))]
    out = []
    for _ in range(FRAGMENTS_PER_LANGUAGE):
        picked = rng.choices(words, weights=weights, k=rng.randint(3, 10))
        if language == "en":  # inflected forms, for the stemmer
            picked = [
                w + rng.choice(("ing", "ed", "s")) if rng.random() < 0.2 else w for w in picked
            ]
        out.append(" ".join(picked))
    return out


def _load(cursor, messages: int, rng: random.Random) -> dict:
    """Users, conversations and messages; return the vocabularies and the searchers."""
    from django.contrib.auth import get_user_model

    user_table = get_user_model()._meta.db_table
    cursor.execute(
        f"INSERT INTO {user_table} (password, is_superuser, username, first_name, last_name, "
        f"email, is_staff, is_active, date_joined) SELECT '!', false, 'search' || i, '', '', "
        f"'', false, true, now() FROM generate_series(1, %s) i RETURNING id",
        [USERS],
    )
    user_ids = [row[0] for row in cursor.fetchall()]
    languages = rng.choices([c for c, _ in LANGUAGES], [w for _, w in LANGUAGES], k=USERS)
    cursor.execute(
        "INSERT INTO profiles_profile (user_id, display_name, language, region, updated_at) "
        "SELECT u, 'S' || u, l, '', now() FROM unnest(%s::bigint[], %s::text[]) AS t(u, l)",
        [user_ids, languages],
    )
    language_of = dict(zip(user_ids, languages, strict=True))
    convs: list[tuple[str, list[int]]] = []
    pairs = set()
    while len(pairs) < DIRECT:
        a, b = rng.sample(user_ids, 2)
        pairs.add((min(a, b), max(a, b)))
    convs += [("direct", list(p)) for p in sorted(pairs)]
    convs += [("group", rng.sample(user_ids, rng.randint(5, 50))) for _ in range(GROUPS)]
    cursor.execute(
        "INSERT INTO conversations_conversation (kind, title, direct_key, last_seq, "
        "members_version, last_change_seq, created_at) SELECT k, '', "
        "CASE WHEN k = 'direct' THEN d END, 0, 0, 0, now() "
        "FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS t(k, d, n) ORDER BY n "
        "RETURNING id",
        [[k for k, _ in convs], [f"{m[0]}:{m[1]}" for _, m in convs]],
    )
    conv_ids = [row[0] for row in cursor.fetchall()]
    member_rows = [(c, u) for c, (_, members) in zip(conv_ids, convs, strict=True) for u in members]
    cursor.execute(
        "INSERT INTO conversations_membership (conversation_id, user_id, role, state, "
        "joined_at, last_read_seq) SELECT c, u, 'member', 'accepted', now(), 0 "
        "FROM unnest(%s::bigint[], %s::bigint[]) AS t(c, u)",
        [[c for c, _ in member_rows], [u for _, u in member_rows]],
    )
    # Slots: a message picks a slot; groups own 60 % of them.
    slots: list[int] = []
    for cid, (kind, _members) in zip(conv_ids, convs, strict=True):
        slots += [cid] * (9 if kind == "group" else 1)
    # 400 groups x 9 = 3,600 slots against 3,000 direct ones: groups get ~55-60 %.
    vocab = {code: _vocabulary(code, rng) for code, _ in LANGUAGES}
    fragments: list[tuple[str, str]] = []
    for code, _ in LANGUAGES:
        fragments += [(code, f) for f in _fragments(code, vocab[code], rng)]
    cursor.execute("CREATE TEMP TABLE frag (lang text, n int, body text)")
    cursor.execute(
        "INSERT INTO frag SELECT l, (row_number() OVER (PARTITION BY l ORDER BY o)) - 1, b "
        "FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS t(l, b, o)",
        [[lang for lang, _ in fragments], [b for _, b in fragments]],
    )
    cursor.execute("CREATE INDEX ON frag (lang, n)")
    cursor.execute("CREATE TEMP TABLE slot AS SELECT (o - 1)::int AS n, c::bigint AS cid "
                   "FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(c, o)", [slots])  # fmt: skip
    cursor.execute(
        "CREATE TEMP TABLE member AS SELECT conversation_id AS cid, "
        "array_agg(user_id ORDER BY user_id) AS ids FROM conversations_membership GROUP BY 1"
    )
    cursor.execute("ANALYZE frag; ANALYZE slot; ANALYZE member")
    # The GIN index is built once after the load (as a restore would), not row by row.
    cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'msg_search'")
    (index_sql,) = cursor.fetchone()
    cursor.execute("DROP INDEX msg_search")
    cursor.execute(
        """
        WITH src AS (
            SELECT i, s.cid,
                   m.ids[1 + (hashint4(i) & 2147483647) %% cardinality(m.ids)] AS uid
            FROM generate_series(1, %(n)s) i
            JOIN slot s ON s.n = (hashint4(i + 7919) & 2147483647) %% %(slots)s
            JOIN member m ON m.cid = s.cid
        ), msg AS (
            SELECT src.*, p.language,
                   row_number() OVER (PARTITION BY src.cid ORDER BY i) AS seq
            FROM src JOIN profiles_profile p ON p.user_id = src.uid
        )
        INSERT INTO conversations_message (conversation_id, seq, sender_id, body, client_id,
                                           created_at, edited_at, deleted_at, change_seq,
                                           language)
        SELECT msg.cid, msg.seq, msg.uid, f1.body || ' ' || f2.body, 'b' || msg.i,
               now() - make_interval(secs => %(n)s - msg.i), NULL, NULL, 0, msg.language
        FROM msg
        JOIN frag f1 ON f1.lang = msg.language
             AND f1.n = (hashint4(msg.i * 3) & 2147483647) %% %(per)s
        JOIN frag f2 ON f2.lang = msg.language
             AND f2.n = (hashint4(msg.i * 5 + 1) & 2147483647) %% %(per)s
        """,
        {"n": messages, "slots": len(slots), "per": FRAGMENTS_PER_LANGUAGE},
    )
    cursor.execute(
        "UPDATE conversations_conversation c SET last_seq = t.n FROM (SELECT conversation_id, "
        "max(seq) AS n FROM conversations_message GROUP BY 1) t WHERE t.conversation_id = c.id"
    )
    cursor.execute(
        "UPDATE conversations_message SET body = '', deleted_at = now() WHERE mod(id, 100) = 42"
    )
    cursor.execute("SET maintenance_work_mem = '256MB'")
    cursor.execute(index_sql)
    members_of: dict[int, list[int]] = {}
    for c, u in member_rows:
        members_of.setdefault(u, []).append(c)
    searchers = [u for u in user_ids if members_of.get(u)]
    return {"vocab": vocab, "language_of": language_of, "searchers": searchers,
            "members_of": members_of}  # fmt: skip


def _queries(world: dict, count: int, rng: random.Random) -> list[tuple[str, int, str, int | None]]:
    """(kind, searcher, q, conversation) in a fixed mix."""
    kinds = ["common", "medium", "rare", "two words", "phrase", "or", "not", "inflected",
             "absent", "one conversation"]  # fmt: skip
    out = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        uid = rng.choice(world["searchers"])
        words = world["vocab"][world["language_of"][uid]]
        common_w = rng.choice(words[:10])
        medium = rng.choice(words[100:300])
        rare = rng.choice(words[2000:5000])
        q, cid = {
            "common": (common_w, None),
            "medium": (medium, None),
            "rare": (rare, None),
            "two words": (f"{common_w} {medium}", None),
            "phrase": (f'"{rng.choice(words[:50])} {rng.choice(words[:50])}"', None),
            "or": (f"{medium} or {rare}", None),
            "not": (f"{medium} -{common_w}", None),
            "inflected": (f"{rng.choice(world['vocab']['en'][:300])}ing", None),
            "absent": ("qqqxyzzy", None),
            "one conversation": (common_w, rng.choice(world["members_of"][uid])),
        }[kind]
        out.append((kind, uid, q, cid))
    return out


def _measure(cursor, queries, run_one) -> dict:
    times: dict[str, list[float]] = {}
    hits = 0
    with common.progress(len(queries), "queries") as bar:
        for kind, uid, q, cid in queries:
            started = time.perf_counter()
            rows = run_one(cursor, uid, q, cid)
            elapsed = (time.perf_counter() - started) * 1000
            hits += bool(rows)
            times.setdefault(kind, []).append(elapsed)
            bar.update(1)
    everything = [t for ts in times.values() for t in ts]
    return {
        "all": common.latency_summary(everything),
        "by_kind": {k: common.latency_summary(v) for k, v in times.items()},
        "with_results": hits,
    }


def _fulltext(cursor, uid: int, q: str, cid: int | None) -> list:
    from conversations import search

    page = search.search_run(
        cursor, user_id=uid, query=q, conversation_id=cid, after=None, limit=PAGE
    )
    return page["results"]


def _ilike(cursor, uid: int, q: str, cid: int | None) -> list:
    words = [w.strip('"-') for w in q.split() if w not in ("or",) and not w.startswith("-")]
    clauses = " AND ".join(["m.body ILIKE %s"] * len(words))
    cursor.execute(
        "SELECT m.id, m.conversation_id, m.seq, m.body FROM conversations_message m "
        "WHERE m.conversation_id IN (SELECT conversation_id FROM conversations_membership "
        "WHERE user_id = %s AND (%s::bigint IS NULL OR conversation_id = %s::bigint)) "
        f"AND m.deleted_at IS NULL AND {clauses} ORDER BY m.id DESC LIMIT %s",
        [uid, cid, cid, *[f"%{w}%" for w in words], PAGE],
    )
    return cursor.fetchall()


def _explain(cursor, query) -> str:
    from conversations import search

    _kind, uid, q, cid = query
    cursor.execute(search.searcher_sql(), {"uid": uid, "cid": cid, "q": q})
    language, conversation_ids, share = cursor.fetchone()
    cursor.execute(
        "EXPLAIN (ANALYZE, BUFFERS) "
        + search.search_sql(common=(share or 0.0) >= search.COMMON_FRACTION),
        {
            **search.search_params(q, language, conversation_ids, None, PAGE),
            "newest": search.COMMON_NEWEST,
        },
    )
    return "\n".join(r[0] for r in cursor.fetchall())


def run(*, quick: bool, results_dir: Path) -> dict:
    from django.db import connections

    common.setup(results_dir)
    conf = QUICK if quick else FULL
    name = f"sb_bench_search_{secrets.token_hex(4)}"
    alias = "search_bench"
    connections.settings[alias] = {**connections.settings["default"], "NAME": name}
    connections.settings[alias]["OPTIONS"] = {
        k: v for k, v in connections.settings[alias].get("OPTIONS", {}).items() if k != "pool"
    }
    common._admin_execute(f'CREATE DATABASE "{name}"')
    rng = random.Random(17)
    try:
        # Migrated by a process of its own, pointed at it: a data migration of another app
        # reads the default database (relations 0002), so ``migrate --database`` is not it.
        env = common.bench_env()
        env["DATABASE_URL"] = common._with_path(common.postgres_server_url(), f"/{name}")
        env["DB_POOL_MAX_SIZE"] = "2"
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            env=env,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        conn = connections[alias]
        with conn.cursor() as cursor:
            started = time.perf_counter()
            world = _load(cursor, conf["messages"], rng)
            loaded = time.perf_counter() - started
            cursor.execute("VACUUM ANALYZE conversations_message")
            cursor.execute("VACUUM ANALYZE conversations_membership")
            cursor.execute("SELECT count(*), pg_size_pretty(pg_total_relation_size("
                           "'conversations_message')), pg_size_pretty(pg_relation_size("
                           "'msg_search')) FROM conversations_message")  # fmt: skip
            count, table_size, index_size = cursor.fetchone()
            ready = time.perf_counter() - started
            queries = _queries(world, conf["queries"], rng)
            for warm in queries[:20]:
                _fulltext(cursor, *warm[1:])
            fulltext = _measure(cursor, queries, _fulltext)
            baseline = _measure(cursor, queries[: conf["baseline_queries"]], _ilike)
            visible = [sum(1 for _ in world["members_of"][u]) for u in world["searchers"][:200]]
            plans = {}
            for kind in ("common", "rare", "absent"):
                plans[kind] = _explain(cursor, next(q for q in queries if q[0] == kind))
    finally:
        connections[alias].close()
        common._admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        del connections.settings[alias]
    p99 = fulltext["all"]["p99"]
    rows = [{"search": f"full text: {k}", **v} for k, v in sorted(fulltext["by_kind"].items())] + [
        {"search": "full text: all", **fulltext["all"]},
        {"search": "ILIKE '%word%': all", **baseline["all"]},
    ]
    columns = [("search", "search", ""), ("count", "n", ""), ("p50", "p50 ms", ".2f"),
               ("p95", "p95 ms", ".2f"), ("p99", "p99 ms", ".2f")]  # fmt: skip
    print(common.table(rows, columns))
    result = {
        "messages": count,
        "users": USERS,
        "conversations": DIRECT + GROUPS,
        "conversations_per_searcher_mean": sum(visible) / len(visible),
        "load_seconds": round(loaded, 1),
        "ready_seconds": round(ready, 1),
        "table_size": table_size,
        "gin_index_size": index_size,
        "fulltext": fulltext,
        "ilike": baseline,
        "explain": plans,
        "machine": common.machine_info(),
        "load": common.machine_load(),
        "targets": [
            {
                "name": f"search p99 over {count:,} messages",
                "target": f"< {TARGET_P99_MS:.0f} ms",
                "measured": f"{p99:.1f} ms (ILIKE {baseline['all']['p99']:.1f} ms)",
                "met": p99 is not None and p99 < TARGET_P99_MS,
            }
        ],
    }
    kinds = sorted(fulltext["by_kind"])
    common.plot(
        results_dir / "search.png",
        title=f"search over {count:,} messages (first page of {PAGE})",
        xlabel="query kind (index)",
        panels=[
            {
                "ylabel": "ms",
                "logy": True,
                "series": {
                    f"full text {p}": (
                        list(range(len(kinds))),
                        [fulltext["by_kind"][k][p] for k in kinds],
                    )
                    for p in ("p50", "p99")
                }
                | {
                    f"ILIKE {p}": (
                        list(range(len(kinds))),
                        [baseline["by_kind"].get(k, {}).get(p) for k in kinds],
                    )
                    for p in ("p50", "p99")
                },
                "hlines": {"target p99": TARGET_P99_MS},
            }
        ],
    )
    result["kinds"] = kinds
    common.write_json(results_dir / "search.json", result)
    return result


if __name__ == "__main__":
    common.scenario_main(run)
