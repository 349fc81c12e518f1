"""Consent (design principle 11): requests, invitations, accept, decline, blocks.

REST and the service rules here; what sockets hear (pushes, sync, typing) in
``test_consent_socket.py`` next to this file, across two processes in
``tests/realtime/test_processes.py``, presence in ``tests/presence/test_consent.py``.
"""

import pytest

from conversations.models import Conversation, Membership
from relations.models import Block
from tests.conftest import accept_all, api_as

pytestmark = pytest.mark.django_db


def _direct(client, user_id):
    return client.post("/api/conversations", {"kind": "direct", "user_id": user_id}, format="json")


def _send(client, cid, body, client_id):
    return client.post(
        f"/api/conversations/{cid}/messages", {"body": body, "client_id": client_id}, format="json"
    )


def _states(cid):
    return dict(Membership.objects.filter(conversation_id=cid).values_list("user_id", "state"))


def test_a_direct_conversation_with_a_stranger_is_a_request_until_accepted(
    api, make_user, settings
):
    settings.LIMITS = {**settings.LIMITS, "REQUEST_MESSAGES_MAX": 3}
    bob = make_user()
    bob_api = api_as(bob)
    created = _direct(api, bob.pk)
    assert created.status_code == 201 and created.json()["state"] == "accepted"
    cid = created.json()["id"]
    assert _states(cid) == {api.user.pk: "accepted", bob.pk: "pending"}
    for i in range(3):  # the requester may write first, up to the limit
        assert _send(api, cid, f"hello {i}", f"r{i}").status_code == 201
    over = _send(api, cid, "one more", "r3")
    assert over.status_code == 403
    assert over.json() == {
        "code": "request_limit",
        "message": "At most 3 messages until they accept your request.",
        "limit": 3,
    }
    # Bob: nothing in his list, the request apart, readable, but nothing else.
    assert bob_api.get("/api/conversations").json() == []
    (request,) = bob_api.get("/api/conversations?state=pending").json()
    assert (request["id"], request["state"], request["invited_by"]) == (cid, "pending", api.user.pk)
    assert request["last_message"]["body"] == "hello 2"
    page = bob_api.get(f"/api/conversations/{cid}/messages").json()
    assert [m["body"] for m in page["messages"]] == ["hello 0", "hello 1", "hello 2"]
    assert bob_api.get(f"/api/conversations/{cid}").json()["state"] == "pending"
    for response in (
        _send(bob_api, cid, "hi", "b1"),
        bob_api.post(f"/api/conversations/{cid}/read", {"seq": 3}, format="json"),
        bob_api.get(f"/api/conversations/{cid}/read"),
    ):
        assert (response.status_code, response.json()["code"]) == (403, "not_accepted")
    assert bob_api.get("/api/unread").json() == {"total": 0, "conversations": []}
    # Accepted: an ordinary conversation for both, with no limit.
    accepted = bob_api.post(f"/api/conversations/{cid}/accept")
    assert accepted.status_code == 200 and accepted.json()["state"] == "accepted"
    assert bob_api.post(f"/api/conversations/{cid}/accept").status_code == 200  # no-op
    assert [c["id"] for c in bob_api.get("/api/conversations").json()] == [cid]
    assert bob_api.get("/api/conversations?state=pending").json() == []
    assert bob_api.get("/api/unread").json()["total"] == 3
    assert _send(bob_api, cid, "hi", "b1").status_code == 201
    assert _send(api, cid, "one more", "r3").status_code == 201
    assert bob_api.post(f"/api/conversations/{cid}/decline").json()["code"] == "conflict"


def test_contacts_are_accepted_at_once_strangers_are_invited(api, make_user):
    bob, cat, dan = make_user(), make_user(), make_user()
    cid = accept_all(_direct(api, bob.pk).json()["id"])  # ann and bob: contacts
    # Bob, a contact, opening a conversation with ann: an existing one, already accepted.
    assert _direct(api_as(bob), api.user.pk).json()["id"] == cid
    group = api.post(
        "/api/conversations",
        {"kind": "group", "title": "G", "member_ids": [bob.pk, cat.pk]},
        format="json",
    ).json()
    assert _states(group["id"]) == {api.user.pk: "accepted", bob.pk: "accepted", cat.pk: "pending"}
    assert {m["user_id"]: m["state"] for m in group["members"]}[cat.pk] == "pending"
    api.post(f"/api/conversations/{group['id']}/members", {"user_ids": [dan.pk]}, format="json")
    assert _states(group["id"])[dan.pk] == "pending"
    assert (
        Membership.objects.get(conversation_id=group["id"], user=dan).invited_by_id == api.user.pk
    )
    # Cat is pending in that group: not a contact of ann, so a direct one is a request too.
    mine = _direct(api_as(cat), api.user.pk).json()["id"]
    assert _states(mine)[api.user.pk] == "pending"
    # The pending invitee declines: out of the group, and nothing of it is shown any more.
    assert api_as(cat).post(f"/api/conversations/{group['id']}/decline").status_code == 204
    assert cat.pk not in _states(group["id"])
    assert api_as(cat).get("/api/conversations?state=pending").json() == []


def test_a_declined_request_cannot_be_written_to_or_asked_again(api, make_user):
    bob = make_user()
    bob_api = api_as(bob)
    cid = _direct(api, bob.pk).json()["id"]
    assert _send(api, cid, "hi", "r1").status_code == 201
    assert bob_api.post(f"/api/conversations/{cid}/decline").status_code == 204
    assert _states(cid) == {api.user.pk: "accepted"}
    for response in (_send(api, cid, "please", "r2"), _direct(api, bob.pk)):
        assert (response.status_code, response.json()["code"]) == (403, "declined")
    assert bob_api.get("/api/conversations?state=pending").json() == []
    assert bob_api.get(f"/api/conversations/{cid}/messages").status_code == 403
    # Bob changes his mind: opening it himself is his consent.
    reopened = _direct(bob_api, api.user.pk)
    assert (reopened.status_code, reopened.json()["id"]) == (200, cid)
    assert _states(cid) == {api.user.pk: "accepted", bob.pk: "accepted"}
    assert _send(api, cid, "thanks", "r2").status_code == 201


def test_a_pending_member_opening_the_conversation_accepts_it(api, make_user):
    bob = make_user()
    cid = _direct(api, bob.pk).json()["id"]
    opened = _direct(api_as(bob), api.user.pk)
    assert (opened.status_code, opened.json()["id"], opened.json()["state"]) == (
        200,
        cid,
        "accepted",
    )


@pytest.mark.parametrize("blocker", ["me", "them"])
def test_a_block_refuses_new_conversations_invitations_and_acceptance(api, make_user, blocker):
    bob, cat = make_user(), make_user()
    ann = api.user
    pending = _direct(api, cat.pk).json()["id"]  # a request to cat, made before any block
    pairs = [(ann, bob), (ann, cat)] if blocker == "me" else [(bob, ann), (cat, ann)]
    for x, y in pairs:
        Block.objects.create(blocker=x, blocked=y)
    before = Conversation.objects.count()
    for response in (
        _direct(api, bob.pk),
        _direct(api_as(bob), ann.pk),
        api.post(
            "/api/conversations",
            {"kind": "group", "title": "G", "member_ids": [bob.pk]},
            format="json",
        ),
    ):
        assert (response.status_code, response.json()["code"]) == (403, "blocked")
    assert Conversation.objects.count() == before  # nothing half-made
    group = api.post("/api/conversations", {"kind": "group", "title": "G"}, format="json").json()
    added = api.post(
        f"/api/conversations/{group['id']}/members", {"user_ids": [bob.pk]}, format="json"
    )
    assert added.json()["code"] == "blocked"
    assert set(_states(group["id"])) == {ann.pk}
    # The request to cat, with a block between them since: cannot be accepted.
    accepting = api_as(cat).post(f"/api/conversations/{pending}/accept")
    assert (accepting.status_code, accepting.json()["code"]) == (403, "blocked")
    assert _states(pending)[cat.pk] == "pending"


def test_bad_state_and_strangers_get_4xx(api, make_user):
    bob, eve = make_user(), make_user()
    cid = _direct(api, bob.pk).json()["id"]
    assert api.get("/api/conversations?state=nope").json()["code"] == "invalid"
    assert api_as(eve).post(f"/api/conversations/{cid}/accept").status_code == 403
    assert api_as(eve).post(f"/api/conversations/{cid}/decline").status_code == 403
    assert api.post("/api/conversations/987654/accept").status_code == 404
    assert api.post(f"/api/conversations/{cid}/decline").json()["code"] == "conflict"  # mine
