"""Searching messages: the full-text search of the conversations a user is in.

A read, so a selector, in a module of its own for its SQL (docs/subsystems/search.md).
On PostgreSQL every message has a ``search`` column, ``to_tsvector`` of its body in its
author's language (migration 0006), indexed with GIN. A query is read with
``websearch_to_tsquery`` (any input is a valid query: quotes, ``or``, ``-word``) twice,
with ``simple`` and with the searcher's own language, and the two are OR-ed: a word
matches a message stemmed in the searcher's language or exactly as written in any other.
One statement finds the matches in the user's conversations, ranks them
(``ts_rank_cd``), keeps one page (keyset: rank, then id), and only then builds the page's
snippets (``ts_headline``, the costly part, runs for the page's rows alone).

Snippets come back as pieces of plain text, each saying whether it is a hit; the HTML
form escapes every piece and wraps hits in ``<mark>``. The highlight markers are control
characters removed from the body first, so a message cannot fake a highlight.

Other databases (SQLite under ``make run``) scan: every word of the query, case-blind,
newest first, no ranking and no stemming.
"""

import html
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection

from core.errors import Invalid
from core.text import text_storable
from profiles.models import Profile

from .models import Membership, Message
from .selectors import membership_get

# ts_headline's markers: control characters, stripped from the body before it runs.
HIT_START = "\x01"
HIT_STOP = "\x02"
# The snippet: up to two fragments of 8 to 24 words around the hits.
HEADLINE_OPTIONS = (
    f'StartSel="{HIT_START}", StopSel="{HIT_STOP}", MaxWords=24, MinWords=8, ShortWord=2, '
    'MaxFragments=2, FragmentDelimiter=" … "'
)
# The SQLite scan's snippet: this many characters from the first hit's neighbourhood.
PORTABLE_SNIPPET_CHARS = 160
# A query the planner expects in at least this share of all messages is a common one: each
# conversation then gives only its newest COMMON_NEWEST matches to the ranking.
COMMON_FRACTION = 0.02
COMMON_NEWEST = 50
_CURSOR = re.compile(r"^(-?[0-9.e+-]+):([0-9]{1,19})$")


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the last result's rank and id (results go by rank, then id, down)."""

    rank: float
    id: int

    def encode(self) -> str:
        return f"{self.rank!r}:{self.id}"


def search_query_parse(raw: object) -> str:
    """Return a search query, or raise ``invalid`` (empty, too long, unstorable)."""
    limit = settings.LIMITS["SEARCH_QUERY_MAX_CHARS"]
    if not isinstance(raw, str) or not raw.strip():
        raise Invalid("q cannot be empty.")
    if len(raw) > limit:
        raise Invalid(f"q has at most {limit} characters.", limit=limit)
    if not text_storable(raw):
        raise Invalid("q contains characters that cannot be searched (NUL, lone surrogates).")
    return raw.strip()


def search_cursor_parse(raw: str | None) -> Cursor | None:
    """Return the cursor of a ``next`` link, or raise ``invalid``."""
    if raw is None:
        return None
    found = _CURSOR.match(raw)
    if found is None:
        raise Invalid("cursor must be the 'next' of a previous page.")
    try:
        rank = float(found.group(1))
    except ValueError:
        raise Invalid("cursor must be the 'next' of a previous page.") from None
    if rank != rank or rank in (float("inf"), float("-inf")):
        raise Invalid("cursor must be the 'next' of a previous page.")
    return Cursor(rank, int(found.group(2)))


def message_search(
    *,
    user_id: int,
    query: str,
    conversation_id: int | None = None,
    cursor: Cursor | None = None,
    limit: int | None = None,
) -> dict:
    """Return a page of the messages matching ``query`` in the conversations I am in.

    The messages I may read there: those of every conversation I hold a membership of,
    pending ones too (``message_history``'s rule); deleted ones never. The query is read in
    my profile's language too. ``query`` comes from ``search_query_parse``.
    """
    if conversation_id is not None:
        membership_get(user_id=user_id, conversation_id=conversation_id)
    limit = max(
        1, min(limit or settings.LIMITS["SEARCH_PAGE_DEFAULT"], settings.LIMITS["SEARCH_PAGE_MAX"])
    )
    if connection.vendor != "postgresql":
        return _search_portable(
            user_id=user_id,
            query=query,
            conversation_id=conversation_id,
            cursor=cursor,
            limit=limit,
        )
    with connection.cursor() as c:
        return search_run(
            c, user_id=user_id, query=query, conversation_id=conversation_id, after=cursor,
            limit=limit,
        )  # fmt: skip


def search_run(
    c: Any,
    *,
    user_id: int,
    query: str,
    conversation_id: int | None,
    after: Cursor | None,
    limit: int,
    common_fraction: float = COMMON_FRACTION,
    newest: int = COMMON_NEWEST,
) -> dict:
    """Run the search on the database cursor ``c`` (PostgreSQL); the bench calls it too.

    Two statements: my language, my conversations and how common the query is first (the
    planner's estimate of its share of all messages), then the search with the first two
    as constants. Constants let the planner see the query: a rare word is read from the
    GIN index. A query the planner expects in at least ``common_fraction`` of the messages
    is a common one: each conversation gives only its ``newest`` matches to the ranking,
    read newest first from the ``(conversation_id, seq)`` index (the scan stops there),
    instead of reading and testing every message of my conversations.
    """
    c.execute(searcher_sql(), {"uid": user_id, "cid": conversation_id, "q": query})
    language, conversation_ids, fraction = c.fetchone()
    common = (fraction or 0.0) >= common_fraction
    params = search_params(query, language, conversation_ids, after, limit)
    c.execute(search_sql(common=common), {**params, "newest": newest})
    return search_page(c.fetchall(), limit)


def searcher_sql() -> str:
    """My language, the conversations I am in (one, with cid), the query's estimated share."""
    member = Membership._meta.db_table
    profile = Profile._meta.db_table
    return f"""
        SELECT s.language, s.convs, switchboard_search_share(
                   websearch_to_tsquery('simple', %(q)s)
                   || websearch_to_tsquery(switchboard_search_config(s.language), %(q)s))
        FROM (SELECT COALESCE((SELECT language FROM {profile} WHERE user_id = %(uid)s), '')
                     AS language,
                     ARRAY(SELECT conversation_id FROM {member} WHERE user_id = %(uid)s
                           AND (%(cid)s::bigint IS NULL OR conversation_id = %(cid)s::bigint))
                     AS convs) s
    """


def search_params(
    query: str, language: str, conversation_ids: list[int], after: Cursor | None, limit: int
) -> dict[str, Any]:
    """The parameters of ``search_sql``."""
    return {
        "q": query,
        "language": language,
        "convs": conversation_ids,
        "after": after is not None,
        "crank": after.rank if after else 0.0,
        "cmsg": after.id if after else 0,
        "limit": limit + 1,
        "start": HIT_START,
        "stop": HIT_STOP,
        "options": HEADLINE_OPTIONS,
    }


def search_page(rows: list[tuple[Any, ...]], limit: int) -> dict:
    """The page ``search_sql``'s rows make, or raise ``invalid`` (no word in the query)."""
    if not rows or rows[0][0] == 0:
        raise Invalid("q has no word to search for (only stop words or punctuation).")
    hits = [row[1:] for row in rows if row[1] is not None]
    more = len(hits) > limit
    hits = hits[:limit]
    results = [_result(*hit) for hit in hits]
    next_cursor = Cursor(hits[-1][6], hits[-1][0]).encode() if more else None
    return {"results": results, "next": next_cursor}


def search_sql(*, common: bool = False) -> str:
    """The search statement (PostgreSQL); its parameters: ``search_params`` and ``newest``.

    ``common``: each conversation gives only its ``newest`` matches to the ranking.
    """
    msg = Message._meta.db_table
    # The query, in simple and in my language, is written out where it is used (not a
    # CTE) so that the planner sees it; hits: the matching messages of my conversations,
    # ranked; page: one page of them (keyset after the cursor); then the page's snippets.
    # The LEFT JOIN answers one row even without a hit, carrying numnode (0: the query had
    # no word to search for).
    q = (
        "(websearch_to_tsquery('simple', %(q)s) || "
        "websearch_to_tsquery(switchboard_search_config(%(language)s), %(q)s))"
    )
    if common:
        # Per conversation, its newest matches: switchboard_search_newest reads it backward
        # along the (conversation_id, seq) index and stops at the ``newest``-th match.
        source = f"""(
            SELECT m.* FROM unnest(%(convs)s::bigint[]) AS mine(id)
            CROSS JOIN LATERAL switchboard_search_newest(mine.id, {q}, %(newest)s) m
        )"""
    else:
        source = msg
    return f"""
        WITH page AS (
            SELECT m.id, m.conversation_id, m.seq, m.sender_id, m.created_at, m.edited_at,
                   ts_rank_cd(m.search, {q}) AS rank, m.body, m.language
            FROM {source} m
            WHERE m.search @@ {q}
              AND m.conversation_id = ANY(%(convs)s::bigint[])
              AND m.deleted_at IS NULL
              AND (NOT %(after)s
                   OR (ts_rank_cd(m.search, {q}), m.id) < (%(crank)s::real, %(cmsg)s::bigint))
            ORDER BY rank DESC, m.id DESC
            LIMIT %(limit)s
        )
        SELECT numnode({q}), p.id, p.conversation_id, p.seq, p.sender_id, p.created_at,
               p.edited_at, p.rank,
               ts_headline(
                   switchboard_search_config(p.language),
                   replace(replace(p.body, %(start)s, ''), %(stop)s, ''),
                   {q}, %(options)s
               )
        FROM (SELECT 1) AS one LEFT JOIN page p ON TRUE
        ORDER BY p.rank DESC, p.id DESC
    """


def snippet_pieces(headline: str) -> list[dict]:
    """Split a headline with the hit markers into ``{"text", "hit"}`` pieces."""
    pieces: list[dict] = []
    for i, part in enumerate(headline.split(HIT_START)):
        if i == 0:
            if part:
                pieces.append({"text": part, "hit": False})
            continue
        hit, _, rest = part.partition(HIT_STOP)
        if hit:
            pieces.append({"text": hit, "hit": True})
        if rest:
            pieces.append({"text": rest, "hit": False})
    return pieces


def snippet_html(pieces: list[dict]) -> str:
    """The pieces as HTML: every text escaped, hits in ``<mark>``."""
    return "".join(
        f"<mark>{html.escape(p['text'])}</mark>" if p["hit"] else html.escape(p["text"])
        for p in pieces
    )


def _result(
    pk: int,
    conversation_id: int,
    seq: int,
    sender_id: int | None,
    created_at: Any,
    edited_at: Any,
    rank: float,
    headline: str,
) -> dict:
    pieces = snippet_pieces(headline)
    return {
        "id": pk,
        "conversation_id": conversation_id,
        "seq": seq,
        "sender_id": sender_id,
        "created_at": created_at.isoformat(),
        "edited_at": edited_at.isoformat() if edited_at else None,
        "rank": rank,
        "snippet": pieces,
        "snippet_html": snippet_html(pieces),
    }


def _search_portable(
    *,
    user_id: int,
    query: str,
    conversation_id: int | None,
    cursor: Cursor | None,
    limit: int,
) -> dict:
    """The SQLite scan: messages holding every word of the query, newest first."""
    words = [w for w in re.findall(r"\w+", query.lower()) if w]
    if not words:
        raise Invalid("q has no word to search for (only stop words or punctuation).")
    mine = Membership.objects.filter(user_id=user_id).values("conversation_id")
    qs = Message.objects.filter(conversation_id__in=mine, deleted_at__isnull=True)
    if conversation_id is not None:
        qs = qs.filter(conversation_id=conversation_id)
    if cursor is not None:
        qs = qs.filter(pk__lt=cursor.id)
    for word in words:
        qs = qs.filter(body__icontains=word)
    rows = list(qs.order_by("-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    results = [
        _result(
            m.pk,
            m.conversation_id,
            m.seq,
            m.sender_id,
            m.created_at,
            m.edited_at,
            0.0,
            _portable_headline(m.body, words),
        )
        for m in rows
    ]
    return {"results": results, "next": Cursor(0.0, rows[-1].pk).encode() if more else None}


def _portable_headline(body: str, words: list[str]) -> str:
    """The body around its first hit, each word of the query between the markers."""
    body = body.replace(HIT_START, "").replace(HIT_STOP, "")
    lower = body.lower()
    first = min((i for i in (lower.find(w) for w in words) if i >= 0), default=0)
    start = max(0, first - PORTABLE_SNIPPET_CHARS // 4)
    text = body[start : start + PORTABLE_SNIPPET_CHARS]
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    marked = pattern.sub(lambda found: f"{HIT_START}{found.group(0)}{HIT_STOP}", text)
    return ("… " if start else "") + marked
