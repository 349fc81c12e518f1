"""The OpenAPI schema agrees with the server: real responses, checked against it.

Each request below is made for real; its status must be one the operation documents and
its body must validate against the documented schema (OpenAPI 3.0's ``nullable`` read as
JSON Schema's ``null``). A response the schema does not allow (a 200 documented as 204, a
``null`` the schema forbids, an error body of another shape) fails here.
"""

import re
from typing import Any

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.conftest import api_as

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _json_schema(node: Any, components: dict) -> Any:
    """OpenAPI 3.0 schema object -> JSON Schema: refs inlined, ``nullable`` as ``null``."""
    if isinstance(node, list):
        return [_json_schema(n, components) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _json_schema(components[node["$ref"].rsplit("/", 1)[1]], components)
    out = {k: _json_schema(v, components) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _operation(schema: dict, method: str, path: str) -> dict:
    path = path.split("?")[0]
    for template, operations in schema["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", r"[^/]+", template), path):
            return operations[method]
    raise AssertionError(f"{method.upper()} {path} is not in the schema")


def _check(schema: dict, method: str, path: str, response) -> None:
    operation = _operation(schema, method, path)
    status = str(response.status_code)
    documented = operation["responses"]
    assert status in documented, f"{method.upper()} {path}: {status} not in {sorted(documented)}"
    content = documented[status].get("content")
    if content is None:
        assert not response.content, f"{method.upper()} {path}: {status} documents no body"
        return
    body_schema = _json_schema(
        content["application/json"]["schema"], schema["components"]["schemas"]
    )
    jsonschema.validate(response.json(), body_schema)


def test_responses_match_the_schema(schema, make_user, settings):
    settings.LIMITS = {**settings.LIMITS, "GROUP_MAX_MEMBERS": 3, "MATCH_RATE_PER_MINUTE": 1}
    ann, bob, cat, dan = (make_user() for _ in range(4))
    me, other = api_as(ann), api_as(bob)

    def call(client, method, path, body=None):
        response = getattr(client, method)(path, body, format="json")
        _check(schema, method, path, response)
        return response

    direct = call(me, "post", "/api/conversations", {"kind": "direct", "user_id": bob.pk})
    cid = direct.json()["id"]
    # A conversation without messages: last_message is null.
    listed = call(me, "get", "/api/conversations").json()
    assert listed[0]["last_message"] is None
    sent = call(me, "post", f"/api/conversations/{cid}/messages", {"body": "hi", "client_id": "c1"})
    mid = sent.json()["id"]
    call(me, "post", f"/api/conversations/{cid}/messages", {"body": "hi", "client_id": "c1"})
    assert call(me, "get", "/api/conversations").json()[0]["last_message"]["id"] == mid
    call(me, "get", f"/api/conversations/{cid}/messages?after=0")
    call(me, "patch", f"/api/messages/{mid}", {"body": "hello"})
    deleted = call(me, "delete", f"/api/messages/{mid}")
    assert (deleted.status_code, deleted.json()["deleted"]) == (200, True)
    # Errors, in the one error body.
    call(other, "delete", f"/api/messages/{mid}")  # not mine: 403
    call(me, "delete", "/api/messages/987654")  # 404
    call(me, "patch", f"/api/messages/{mid}", {"body": "again"})  # deleted: 400
    call(me, "post", f"/api/conversations/{cid}/messages", {"body": "", "client_id": "c2"})
    too_long = {"body": "x" * 4_001, "client_id": "c3"}
    assert "limit" in call(me, "post", f"/api/conversations/{cid}/messages", too_long).json()
    call(me, "post", "/api/conversations", {"kind": "group", "title": "x" * 121})
    # Group rules: the size bound, owners only, fixed direct members.
    group = call(me, "post", "/api/conversations",
                 {"kind": "group", "title": "G", "member_ids": [bob.pk, cat.pk]})  # fmt: skip
    gid = group.json()["id"]
    too_many = call(me, "post", f"/api/conversations/{gid}/members", {"user_ids": [dan.pk]})
    assert too_many.status_code == 400
    assert call(other, "delete", f"/api/conversations/{gid}/members/{cat.pk}").status_code == 403
    assert call(me, "delete", f"/api/conversations/{gid}/members/{cat.pk}").status_code == 204
    call(me, "post", f"/api/conversations/{cid}/members", {"user_ids": [cat.pk]})  # direct: 400
    call(other, "post", f"/api/conversations/{gid}/leave")
    call(me, "get", f"/api/conversations/{gid}")
    # Meet: a conflict-free enter, then the rate limit's 429 with retry_after.
    call(me, "post", "/api/meet/queue", {})
    assert call(me, "post", "/api/meet/queue", {}).status_code == 429
    call(me, "post", "/api/meet/queue", {"region": []})
    call(me, "get", "/api/users?q=%00")
    call(api_as(dan), "post", "/api/auth/signup", {"username": "\u0430nn", "password": "x"})
    call(me, "get", "/api/profile")
    call(me, "patch", "/api/profile", {"language": []})
    call(me, "get", "/api/unread")
    call(me, "get", "/api/presence?user_ids=a")
    call(api_as(dan), "get", f"/api/conversations/{cid}")  # not a member
    # Consent: bob's requests, what he may not do before accepting, accept and decline.
    requests = call(other, "get", "/api/conversations?state=pending").json()
    assert [r["id"] for r in requests] == [cid] and requests[0]["state"] == "pending"
    call(other, "get", "/api/conversations?state=maybe")  # 400
    refused = call(
        other, "post", f"/api/conversations/{cid}/messages", {"body": "x", "client_id": "b"}
    )
    assert refused.json()["code"] == "not_accepted"
    assert call(other, "post", f"/api/conversations/{cid}/accept").json()["state"] == "accepted"
    assert call(other, "post", f"/api/conversations/{cid}/decline").status_code == 409
    assert call(api_as(cat), "post", f"/api/conversations/{gid}/decline").status_code == 403
    call(me, "get", f"/api/users/{bob.pk}/profile")  # a contact now: last_seen may show
