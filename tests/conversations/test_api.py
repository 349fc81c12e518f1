"""Conversations and messages over REST."""

import pytest

from conversations.models import Conversation, Membership, Message
from tests.conftest import accept_all, api_as

pytestmark = pytest.mark.django_db


def _send(client, cid, body, client_id):
    return client.post(
        f"/api/conversations/{cid}/messages", {"body": body, "client_id": client_id}, format="json"
    )


def test_direct_conversation_is_unique_per_pair(api, make_user):
    bob = make_user()
    first = api.post("/api/conversations", {"kind": "direct", "user_id": bob.pk}, format="json")
    assert first.status_code == 201
    again = api_as(bob).post(
        "/api/conversations", {"kind": "direct", "user_id": api.user.pk}, format="json"
    )
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Conversation.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "direct"},
        {"kind": "direct", "user_id": "2"},
        {"kind": "direct", "user_id": 987654},
        {"kind": "group", "member_ids": []},
        {"kind": "group", "title": "x" * 121, "member_ids": []},
        {"kind": "group", "title": "T", "member_ids": "1,2"},
        {"kind": "group", "title": "T", "member_ids": [987654]},
        {"kind": "channel"},
    ],
)
def test_bad_create_requests_are_4xx_and_create_nothing(api, body):
    res = api.post("/api/conversations", body, format="json")
    assert 400 <= res.status_code < 500
    assert res.json()["code"] in {"invalid", "not_found"}
    assert not Conversation.objects.exists()


def test_direct_with_myself_is_invalid(api):
    res = api.post("/api/conversations", {"kind": "direct", "user_id": api.user.pk}, format="json")
    assert res.status_code == 400


def test_group_size_limit(api, make_user, settings):
    settings.LIMITS = {**settings.LIMITS, "GROUP_MAX_MEMBERS": 3}
    users = [make_user() for _ in range(3)]
    res = api.post(
        "/api/conversations",
        {"kind": "group", "title": "Big", "member_ids": [u.pk for u in users]},
        format="json",
    )
    assert res.status_code == 400
    res = api.post(
        "/api/conversations",
        {"kind": "group", "title": "Ok", "member_ids": [u.pk for u in users[:2]]},
        format="json",
    )
    assert res.status_code == 201
    cid = res.json()["id"]
    res = api.post(f"/api/conversations/{cid}/members", {"user_ids": [users[2].pk]}, format="json")
    assert res.status_code == 400
    assert Membership.objects.filter(conversation_id=cid).count() == 3


def test_owner_adds_and_removes_members_others_cannot(api, make_user):
    bob, cat = make_user(), make_user()
    cid = api.post(
        "/api/conversations", {"kind": "group", "title": "T", "member_ids": [bob.pk]}, format="json"
    ).json()["id"]
    as_bob = api_as(bob)
    assert (
        as_bob.post(
            f"/api/conversations/{cid}/members", {"user_ids": [cat.pk]}, format="json"
        ).json()["code"]
        == "forbidden"
    )
    res = api.post(
        f"/api/conversations/{cid}/members", {"user_ids": [cat.pk, bob.pk]}, format="json"
    )
    assert res.json() == {"added": [cat.pk]}
    assert as_bob.delete(f"/api/conversations/{cid}/members/{cat.pk}").status_code == 403
    assert api.delete(f"/api/conversations/{cid}/members/{cat.pk}").status_code == 204
    assert api.delete(f"/api/conversations/{cid}/members/{cat.pk}").status_code == 404
    assert api_as(cat).get(f"/api/conversations/{cid}").status_code == 403


def test_last_owner_leaving_hands_over_ownership(api, make_user):
    bob = make_user()
    cid = api.post(
        "/api/conversations", {"kind": "group", "title": "T", "member_ids": [bob.pk]}, format="json"
    ).json()["id"]
    cat = make_user()
    api.post(f"/api/conversations/{cid}/members", {"user_ids": [cat.pk]}, format="json")
    accept_all(cid)  # bob and cat accepted, bob first
    assert api.post(f"/api/conversations/{cid}/leave").status_code == 204
    assert Membership.objects.get(conversation_id=cid, user=bob).role == "owner"
    assert api.get(f"/api/conversations/{cid}").status_code == 403


def test_cannot_leave_a_direct_conversation(api, make_user):
    bob = make_user()
    cid = api.post(
        "/api/conversations", {"kind": "direct", "user_id": bob.pk}, format="json"
    ).json()["id"]
    assert api.post(f"/api/conversations/{cid}/leave").status_code == 400


def test_list_orders_by_activity_with_last_message_and_unread(api, make_user):
    bob, cat = make_user(), make_user()
    c1 = api.post(
        "/api/conversations", {"kind": "direct", "user_id": bob.pk}, format="json"
    ).json()["id"]
    c2 = api.post(
        "/api/conversations", {"kind": "direct", "user_id": cat.pk}, format="json"
    ).json()["id"]
    accept_all(c1), accept_all(c2)
    _send(api_as(bob), c1, "one", "a")
    _send(api_as(cat), c2, "two", "b")
    _send(api_as(bob), c1, "three", "c")
    _send(api, c1, "mine", "d")
    rows = api.get("/api/conversations").json()
    assert [r["id"] for r in rows] == [c1, c2]
    assert rows[0]["last_message"]["body"] == "mine"
    assert [r["unread"] for r in rows] == [2, 1]  # my own message is not unread


def test_history_pages_by_seq_and_is_stable_while_messages_arrive(api, make_user):
    bob = make_user()
    cid = api.post(
        "/api/conversations", {"kind": "direct", "user_id": bob.pk}, format="json"
    ).json()["id"]
    accept_all(cid)
    for i in range(1, 8):
        _send(api, cid, f"m{i}", f"k{i}")
    page = api.get(f"/api/conversations/{cid}/messages", {"limit": 3}).json()
    assert [m["seq"] for m in page["messages"]] == [5, 6, 7]
    assert page["has_more"] is True
    _send(api, cid, "m8", "k8")  # arrives while paging back
    older = api.get(f"/api/conversations/{cid}/messages", {"before": 5, "limit": 3}).json()
    assert [m["seq"] for m in older["messages"]] == [2, 3, 4]
    oldest = api.get(f"/api/conversations/{cid}/messages", {"before": 2, "limit": 3}).json()
    assert [m["seq"] for m in oldest["messages"]] == [1]
    assert oldest["has_more"] is False
    newer = api.get(f"/api/conversations/{cid}/messages", {"after": 6}).json()
    assert [m["seq"] for m in newer["messages"]] == [7, 8]
    assert api.get(f"/api/conversations/{cid}/messages", {"after": "x"}).status_code == 400
    assert api_as(make_user()).get(f"/api/conversations/{cid}/messages").status_code == 403
    assert api.get("/api/conversations/987654/messages").status_code == 404


@pytest.mark.parametrize(
    ("body", "client_id"),
    [("", "a"), ("   ", "a"), ("x" * 4001, "a"), (5, "a"), (None, "a"), ("ok", ""), ("ok", 5),
     ("ok", "x" * 65), ("nul\x00", "a"), ("ok", "nul\x00")],
)  # fmt: skip
def test_bad_messages_are_invalid_and_not_stored(api, make_user, body, client_id):
    bob = make_user()
    cid = api.post(
        "/api/conversations", {"kind": "direct", "user_id": bob.pk}, format="json"
    ).json()["id"]
    res = _send(api, cid, body, client_id)
    assert res.status_code == 400
    assert res.json()["code"] == "invalid"
    assert not Message.objects.exists()
    assert Conversation.objects.get(pk=cid).last_seq == 0


def test_a_lone_surrogate_in_json_is_invalid_not_a_500(api, make_user):
    bob = make_user()
    cid = api.post("/api/conversations", {"kind": "direct", "user_id": bob.pk}, format="json")
    raw = '{"body": "bad \\ud800", "client_id": "a"}'  # valid JSON, not encodable as UTF-8
    res = api.post(
        f"/api/conversations/{cid.json()['id']}/messages", raw, content_type="application/json"
    )
    assert res.status_code == 400
    assert not Message.objects.exists()


def test_message_of_exactly_the_limit_is_accepted(api, make_user):
    bob = make_user()
    cid = api.post(
        "/api/conversations", {"kind": "direct", "user_id": bob.pk}, format="json"
    ).json()["id"]
    assert _send(api, cid, "x" * 4000, "a").status_code == 201


def test_retry_with_same_client_id_returns_the_original(api, make_user):
    bob = make_user()
    cid = api.post(
        "/api/conversations", {"kind": "direct", "user_id": bob.pk}, format="json"
    ).json()["id"]
    first = _send(api, cid, "hello", "same")
    second = _send(api, cid, "hello again", "same")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    other = api.post(
        "/api/conversations", {"kind": "direct", "user_id": make_user().pk}, format="json"
    )
    assert _send(api, other.json()["id"], "x", "same").status_code == 409
    assert Message.objects.count() == 1


def test_edit_and_delete_only_my_own(api, make_user):
    bob = make_user()
    cid = api.post(
        "/api/conversations", {"kind": "direct", "user_id": bob.pk}, format="json"
    ).json()["id"]
    mid = _send(api, cid, "tpyo", "a").json()["id"]
    assert (
        api_as(bob).patch(f"/api/messages/{mid}", {"body": "x"}, format="json").status_code == 403
    )
    assert api_as(make_user()).delete(f"/api/messages/{mid}").status_code == 403
    res = api.patch(f"/api/messages/{mid}", {"body": "typo"}, format="json")
    assert res.json()["body"] == "typo" and res.json()["edited_at"]
    assert api.patch(f"/api/messages/{mid}", {"body": ""}, format="json").status_code == 400
    res = api.delete(f"/api/messages/{mid}")
    assert res.json()["deleted"] is True and res.json()["body"] == ""
    assert api.patch(f"/api/messages/{mid}", {"body": "back"}, format="json").status_code == 400
    assert api.delete("/api/messages/987654").status_code == 404
    history = api.get(f"/api/conversations/{cid}/messages").json()["messages"]
    assert [(m["seq"], m["deleted"]) for m in history] == [(1, True)]
