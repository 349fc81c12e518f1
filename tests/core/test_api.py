"""``core.api``: one exception handler for every view; the schema documents error responses."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from core.errors import STATUS_BY_CODE, Conflict, RateLimited, ServiceError

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "method", "body", "status", "code"),
    [
        ("/api/conversations", "post", {"kind": "nope"}, 400, "invalid"),
        ("/api/conversations", "post", ["not", "an", "object"], 400, "invalid"),
        ("/api/conversations/999999", "get", None, 404, "not_found"),
        ("/api/conversations/999999/messages?before=x", "get", None, 400, "invalid"),
        ("/api/conversations/999999/messages?before=", "get", None, 400, "invalid"),
        ("/api/meet/trending?limit=0", "get", None, 400, "invalid"),
        ("/api/meet/trending/%20", "get", None, 400, "invalid"),
        ("/api/meet/blocks", "post", {"user_id": 999999}, 404, "not_found"),
        ("/api/presence?user_ids=a,b", "get", None, 400, "invalid"),
        ("/api/conversations/999999/read", "post", {"seq": 1}, 404, "not_found"),
    ],
)
def test_service_errors_answer_their_status_and_the_shared_body(
    api, path, method, body, status, code
):
    response = getattr(api, method)(path, body, format="json") if body is not None else (
        getattr(api, method)(path)
    )  # fmt: skip
    assert response.status_code == status, response.content
    data = response.json()
    assert data["code"] == code and isinstance(data["message"], str) and data["message"]


@pytest.mark.parametrize("body", ["[" * 5_000, '{"a":' * 5_000 + "1" + "}" * 5_000])
def test_a_body_nested_too_deeply_is_a_400_not_a_500(api, body):
    response = api.post("/api/meet/queue", body, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")


def test_every_code_has_a_status_and_extra_fields_travel():
    assert ServiceError("x").http_status == 400
    assert Conflict("x", match_id=3).extra == {"match_id": 3}
    assert RateLimited("x").http_status == STATUS_BY_CODE["rate_limited"] == 429
    assert ServiceError("x", code="forbidden").http_status == 403


def test_a_rate_limited_view_sends_retry_after(api, settings):
    settings.LIMITS = {**settings.LIMITS, "MATCH_RATE_PER_MINUTE": 1}
    api.post("/api/meet/queue", {}, format="json")
    response = api.post("/api/meet/queue", {}, format="json")
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
    assert response["X-RateLimit-Remaining"] == "0"
    assert response.json()["retry_after"] >= 1


def test_the_schema_documents_error_responses_of_every_operation():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert "Error" in schema["components"]["schemas"]
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            wanted = {"400"} | ({"404"} if "{" in path else set())
            if {} not in operation.get("security", []):
                wanted |= {"401", "403"}
            for status in wanted - set(responses):
                missing.append(f"{method.upper()} {path} {status}")
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Error", (path, status)
    assert missing == []
    queue = schema["paths"]["/api/meet/queue"]["post"]["responses"]
    assert {"409", "429", "503"} <= set(queue)


@pytest.mark.parametrize(
    "path", ["/api/conversations/-1", "/api/users/x/profile", "/api/messages/1.5", "/api/nothing"]
)
def test_a_path_no_route_matches_under_api_is_a_json_404(api, path):
    """Found by the schemathesis fuzz (tests/switchboard/test_api_fuzz.py): Django's HTML page."""
    response = api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


def test_a_path_no_route_matches_elsewhere_keeps_django_s_page(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "application/json" not in response["Content-Type"]


def _operation(schema: dict, method: str, path: str) -> dict:
    return schema["paths"][path][method]


def _component(schema: dict, operation: dict) -> dict:
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_the_schema_states_what_the_fuzz_found_the_views_answer():
    """Each line: a response or a rule of a view the schema did not state (schemathesis)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    statuses = {
        ("post", "/api/auth/token"): {"401"},  # wrong password
        ("delete", "/api/auth/token"): {"401"},  # not signed in
        ("post", "/api/auth/session"): {"401", "403"},  # wrong password; no CSRF token
        ("post", "/api/conversations"): {"404"},  # an unknown user id
        ("post", "/api/meet/blocks"): {"404"},
        ("post", "/api/meet/reports"): {"404", "409"},
    }
    for (method, path), expected in statuses.items():
        assert expected <= set(_operation(schema, method, path)["responses"]), (method, path)
    # Request bodies are JSON only: a form cannot carry the typed values the views read.
    for operations in schema["paths"].values():
        for operation in operations.values():
            if "requestBody" in operation:
                assert set(operation["requestBody"]["content"]) == {"application/json"}
    edit = _component(schema, _operation(schema, "patch", "/api/messages/{message_id}"))
    assert edit["required"] == ["body"] and edit["properties"]["body"]["minLength"] == 1
    profile = _component(schema, _operation(schema, "patch", "/api/profile"))
    assert profile["additionalProperties"] is False  # the view refuses unknown fields
    assert "required" not in profile
    (limit,) = _operation(schema, "get", "/api/meet/trending")["parameters"]
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 100)
    read = _component(
        schema, _operation(schema, "post", "/api/conversations/{conversation_id}/read")
    )
    assert read["properties"]["seq"]["minimum"] == 0
    send = _component(
        schema, _operation(schema, "post", "/api/conversations/{conversation_id}/messages")
    )
    assert send["properties"]["client_id"]["maxLength"] == 64
