"""``conversations.search`` and ``GET /api/search`` against PostgreSQL's full-text search."""

import pytest
from django.db import connection

from conversations import search
from conversations.models import Message
from conversations.services import (
    conversation_direct_get_or_create,
    conversation_group_create,
    message_delete,
    message_edit,
    message_send,
)
from tests.conftest import accept_all, api_as

pytestmark = pytest.mark.django_db

_ids = iter(range(1, 1_000_000))


def _send(user, conversation_id, body):
    message, _ = message_send(
        sender_id=user.pk, conversation_id=conversation_id, body=body, client_id=f"s{next(_ids)}"
    )
    return message


def _group(owner, *others):
    conversation = conversation_group_create(
        user_id=owner.pk, title="g", member_ids=[o.pk for o in others]
    )
    accept_all(conversation)
    return conversation.pk


def _search(user, q, **params):
    res = api_as(user).get("/api/search", {"q": q, **params})
    assert res.status_code == 200, res.json()
    return res.json()


def _found(user, q, **params):
    return [r["id"] for r in _search(user, q, **params)["results"]]


def test_an_english_authors_words_are_found_by_their_stem_and_a_simple_one_only_as_written(
    make_user,
):
    ann = make_user(language="en")
    nobody = make_user()  # no profile: simple
    ja = make_user(language="ja")  # no PostgreSQL configuration for Japanese: simple
    reader = make_user()
    gid = _group(ann, nobody, ja, reader)
    english = _send(ann, gid, "I was running late for the meeting")
    plain = _send(nobody, gid, "running shoes on sale")
    japanese = _send(ja, gid, "running は楽しい")
    assert Message.objects.get(pk=english.pk).language == "en"
    assert Message.objects.get(pk=plain.pk).language == ""
    assert _found(reader, "run") == [english.pk]
    assert set(_found(reader, "running")) == {plain.pk, japanese.pk}
    # A searcher whose profile says English reads the query in English too.
    reader_en = make_user(language="en")
    en_gid = _group(ann, nobody, reader_en)
    english_2 = _send(ann, en_gid, "she runs every morning")
    assert _found(reader_en, "running") == [english_2.pk]


def test_a_french_author_is_stemmed_in_french(make_user):
    fr = make_user(language="fr")
    reader = make_user(language="fr")
    gid = _group(fr, reader)
    horses = _send(fr, gid, "Les chevaux mangent des pommes")
    assert _found(reader, "cheval") == [horses.pk]
    assert _found(reader, "pomme") == [horses.pk]


def test_results_are_ranked_by_cover_density_then_newest(make_user):
    ann, bob = make_user(language="en"), make_user(language="en")
    gid = _group(ann, bob)
    far = _send(ann, gid, "apple " + "word " * 30 + "banana")
    close = _send(ann, gid, "apple banana bread")
    older_twin = _send(ann, gid, "banana and apple pie")
    twin = _send(ann, gid, "banana and apple pie")
    results = _search(bob, "apple banana")["results"]
    assert [r["id"] for r in results] == [close.pk, twin.pk, older_twin.pk, far.pk]
    ranks = [r["rank"] for r in results]
    assert ranks == sorted(ranks, reverse=True) and ranks[0] > ranks[-1]


def test_only_the_conversations_i_am_in_and_pending_ones_as_history(make_user):
    ann, bob, eve, stranger = (make_user(language="en") for _ in range(4))
    gid = _group(ann, bob)
    mine = _send(ann, gid, "the secret word is pineapple")
    others = _group(eve, stranger)
    _send(eve, others, "pineapple for eve only")
    # A request from a stranger (ann and stranger are no contacts): pending for stranger.
    request, _ = conversation_direct_get_or_create(user_id=stranger.pk, other_user_id=bob.pk)
    asked = _send(stranger, request.pk, "do you like pineapple")
    assert _found(ann, "pineapple") == [mine.pk]
    assert set(_found(bob, "pineapple")) == {mine.pk, asked.pk}
    assert _found(bob, "pineapple", conversation=gid) == [mine.pk]
    forbidden = api_as(bob).get("/api/search", {"q": "pineapple", "conversation": others})
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"
    missing = api_as(bob).get("/api/search", {"q": "pineapple", "conversation": 987654321})
    assert missing.status_code == 404


def test_deleted_messages_are_never_found_and_edits_are_reindexed(make_user):
    ann, bob = make_user(language="en"), make_user(language="en")
    gid = _group(ann, bob)
    gone = _send(ann, gid, "a message about zebras")
    edited = _send(ann, gid, "a message about giraffes")
    assert _found(bob, "zebra") == [gone.pk]
    message_delete(user_id=ann.pk, message_id=gone.pk)
    message_edit(user_id=ann.pk, message_id=edited.pk, body="now it is about elephants")
    assert _found(bob, "zebra") == []
    assert _found(bob, "giraffe") == []
    (hit,) = _search(bob, "elephant")["results"]
    assert hit["id"] == edited.pk and hit["edited_at"] is not None


def test_pages_follow_the_cursor_without_repeats_to_the_end(make_user):
    ann, bob = make_user(language="en"), make_user(language="en")
    gid = _group(ann, bob)
    sent = [_send(ann, gid, f"kiwi number {i}" + " kiwi" * (i % 3)).pk for i in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        page = _search(bob, "kiwi", limit=3, **({"cursor": cursor} if cursor else {}))
        pages += 1
        seen += [r["id"] for r in page["results"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 3 and sorted(seen) == sorted(sent) and len(seen) == len(set(seen))
    assert seen == _found(bob, "kiwi", limit=50)


def _run(user, q, **kw):
    with connection.cursor() as c:
        page = search.search_run(
            c, user_id=user.pk, query=q, conversation_id=None, after=None, limit=50, **kw
        )
    return [r["id"] for r in page["results"]]


def test_a_common_query_ranks_only_each_conversations_newest_matches(make_user):
    ann, bob, eve = (make_user(language="en") for _ in range(3))
    gid, other, not_mine = _group(ann, bob), _group(bob, ann), _group(ann, eve)
    best_but_old = _send(ann, gid, "plum plum plum plum")
    older = [_send(ann, gid, f"one plum number {i}").pk for i in range(3)]
    newest = [_send(ann, gid, f"a plum again {i}").pk for i in range(3)]
    _send(ann, gid, "no fruit here")
    gone = _send(ann, gid, "a plum deleted")
    message_delete(user_id=ann.pk, message_id=gone.pk)
    there = [_send(bob, other, f"plum over there {i}").pk for i in range(2)]
    _send(ann, not_mine, "a plum bob cannot read")
    every = [best_but_old.pk, *older, *newest, *there]
    # A rare query (the GIN index) ranks every match; the best first.
    assert _run(bob, "plum", common_fraction=2.0)[0] == best_but_old.pk
    assert sorted(_run(bob, "plum", common_fraction=2.0)) == sorted(every)
    # A common one: each conversation's 3 newest matches (a deleted one takes no place).
    common = _run(bob, "plum", common_fraction=0.0, newest=3)
    assert sorted(common) == sorted(newest + there)
    # Ranked as the rare path ranks them, and the same set when the cap is not reached.
    assert common == [i for i in _run(bob, "plum", common_fraction=2.0) if i in common]
    assert _run(bob, "plum", common_fraction=0.0, newest=100) == _run(
        bob, "plum", common_fraction=2.0
    )


def test_how_common_a_query_is_comes_from_the_planners_statistics(make_user):
    ann, bob = make_user(language="en"), make_user(language="en")
    gid = _group(ann, bob)
    for i in range(40):
        _send(ann, gid, f"cherry {i} " + ("lemon" if i % 10 == 0 else "melon"))
    with connection.cursor() as c:
        c.execute("ANALYZE conversations_message")  # rolled back with the test
        c.execute(
            "SELECT switchboard_search_share(to_tsquery('english', w)) "
            "FROM unnest(ARRAY['cherry', 'lemon', 'qqqxyzzy']) w"
        )
        cherry, lemon, absent = (row[0] for row in c.fetchall())
    assert cherry > 0.9 and 0.05 < lemon < 0.5 and absent <= 1 / 40  # the planner's floor: a row


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({}, "empty"),
        ({"q": ""}, "empty"),
        ({"q": "   "}, "empty"),
        ({"q": "x" * 201}, "200"),
        ({"q": "!!! ()"}, "no word"),
        ({"q": "a\x00b"}, "cannot be searched"),
        ({"q": "kiwi", "cursor": "nonsense"}, "cursor"),
        ({"q": "kiwi", "cursor": "nan:5"}, "cursor"),
        ({"q": "kiwi", "limit": "many"}, "limit"),
        ({"q": "kiwi", "conversation": "x"}, "conversation"),
    ],
)
def test_bad_queries_are_a_clear_400(api, params, says):
    res = api.get("/api/search", params)
    assert res.status_code == 400, res.content
    assert res.json()["code"] == "invalid" and says in res.json()["message"]


def test_the_longest_query_and_odd_syntax_are_answered(make_user):
    ann, bob = make_user(language="en"), make_user(language="en")
    gid = _group(ann, bob)
    hit = _send(ann, gid, "lemon tart recipe")
    longest = '"lemon tart" or -"apple" '
    longest += "x" * (200 - len(longest))
    assert _found(bob, longest) == [hit.pk]  # "lemon tart", or (not apple and xxx...)
    assert _found(bob, '"tart lemon"') == []
    assert _found(bob, '"lemon tart" -apple') == [hit.pk]
    assert _found(bob, "lemon & | ! : * tart") == [hit.pk]
    assert _search(bob, "lemon", limit=0)["results"][0]["id"] == hit.pk  # clamped to 1


def test_snippets_mark_the_hits_and_never_carry_message_html(make_user):
    ann, bob = make_user(language="en"), make_user(language="en")
    gid = _group(ann, bob)
    _send(ann, gid, 'I keep running <img src=x onerror="alert(1)"> & <b>laughing</b> \x01fake\x02')
    (hit,) = _search(bob, "run")["results"]
    assert {"text": "running", "hit": True} in hit["snippet"]
    assert not any(p["hit"] and p["text"] == "fake" for p in hit["snippet"])
    text = "".join(p["text"] for p in hit["snippet"])
    assert "\x01" not in text and "\x02" not in text
    assert "<mark>running</mark>" in hit["snippet_html"]
    assert "<img" not in hit["snippet_html"] and "<b>" not in hit["snippet_html"]
    assert hit["snippet_html"].replace("<mark>", "").replace("</mark>", "").count("<") == 0


def test_history_around_a_seq_centres_the_page(make_user):
    ann, bob = make_user(), make_user()
    gid = _group(ann, bob)
    for i in range(30):
        _send(ann, gid, f"m{i}")
    page = api_as(bob).get(f"/api/conversations/{gid}/messages", {"around": 10, "limit": 6})
    assert page.status_code == 200
    body = page.json()
    assert [m["seq"] for m in body["messages"]] == [7, 8, 9, 10, 11, 12]
    assert body["has_more"] and body["has_newer"]
    last = api_as(bob).get(f"/api/conversations/{gid}/messages", {"around": 29, "limit": 6})
    assert [m["seq"] for m in last.json()["messages"]] == [26, 27, 28, 29, 30]
    assert not last.json()["has_newer"]
