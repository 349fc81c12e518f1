"""REST plumbing shared by every app: one exception handler, one error shape, its schema.

Views raise; they never build error responses. ``exception_handler`` (DRF's
``EXCEPTION_HANDLER``) turns

- a ``core.errors.ServiceError`` into ``{"code", "message", ...extra}`` with the HTTP status
  of its code (``core.errors.STATUS_BY_CODE``) and its ``headers`` (e.g. the rate limit's
  ``Retry-After``);
- a DRF ``ValidationError`` into ``{"code": "invalid", "message", "fields": {...}}``;
- any other DRF ``APIException`` (401, 403, 404, 405, 415, ...) into ``{"code", "message"}``;
  ``Throttled`` is ``rate_limited`` with ``retry_after`` and the ``Retry-After`` header;
- PostgreSQL or Redis away (a connection-level error) into 503 ``unavailable`` with
  ``Retry-After``, and any other exception into 500 ``internal``: a REST client always gets
  JSON, never Django's HTML error page. The first is logged as one line (rate-limited,
  ``core.api.outage``), the second with its traceback (a bug).

Errors raised outside a DRF view under ``/api/`` (a middleware) get the same JSON from
``server_error``, Django's ``handler500`` (``switchboard/urls.py``; with ``DEBUG`` on Django
shows its debug page instead), and a path under ``/api/`` that no route matches gets a JSON
404 from ``page_not_found`` (``handler404``).

The OpenAPI side: drf-spectacular's postprocessing hook ``schema_error_responses`` adds the
error responses to every operation (an operation names its own extra ones with
``extend_schema(extensions={"x-errors": ["409", "429"]})``, and a view that refuses unknown
fields says so with ``{"x-closed-body": True}``).
"""

import logging
import math
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views import defaults
from rest_framework import exceptions, parsers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from .errors import (
    INTERNAL,
    NOT_FOUND,
    OUTAGE_ERRORS,
    OUTAGE_MESSAGE,
    OUTAGE_RETRY_AFTER_SECONDS,
    RATE_LIMITED,
    STATUS_BY_CODE,
    UNAVAILABLE,
    Invalid,
    ServiceError,
)

logger = logging.getLogger(__name__)
outage_logger = logging.getLogger("core.api.outage")

INTERNAL_MESSAGE = "The server failed; try again."


def _unavailable_body() -> dict[str, Any]:
    return {
        "code": UNAVAILABLE,
        "message": OUTAGE_MESSAGE,
        "retry_after": OUTAGE_RETRY_AFTER_SECONDS,
    }


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Return every API error in the shared shape, unexpected ones included."""
    if isinstance(exc, ServiceError):
        set_rollback()  # as DRF does for the exceptions it handles (ATOMIC_REQUESTS)
        body = {"code": exc.code, "message": exc.message, **exc.extra}
        return Response(body, status=exc.http_status, headers=exc.headers)
    response = drf_exception_handler(exc, context)
    if response is None:
        return _unexpected(exc, context)
    data = response.data
    if isinstance(exc, exceptions.Throttled):
        wait = max(1, math.ceil(getattr(exc, "wait", None) or 0))  # stubs omit it
        response.data = {
            "code": RATE_LIMITED,
            "message": "Too many requests; try again later.",
            "retry_after": wait,
        }
        response["Retry-After"] = str(wait)
        return response
    if isinstance(exc, exceptions.ValidationError):
        fields = data if isinstance(data, dict) else {"non_field_errors": data}
        fields = {k: _first(v) for k, v in fields.items()}
        body = {"code": "invalid", "message": "The request is not valid.", "fields": fields}
    else:
        detail = data.get("detail", "") if isinstance(data, dict) else str(data)
        code = getattr(getattr(exc, "detail", None), "code", None) or getattr(
            exc, "default_code", "error"
        )
        body = {"code": str(code), "message": str(detail)}
    response.data = body
    return response


def _unexpected(exc: Exception, context: dict[str, Any]) -> Response:
    set_rollback()
    request = context.get("request")
    path = getattr(request, "path", "?")
    if isinstance(exc, OUTAGE_ERRORS):
        outage_logger.error("path=%s unavailable: %s: %s", path, type(exc).__name__, exc)
        headers = {"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)}
        return Response(_unavailable_body(), status=503, headers=headers)
    logger.error("path=%s failed", path, exc_info=exc)
    return Response({"code": INTERNAL, "message": INTERNAL_MESSAGE}, status=500)


def server_error(request: HttpRequest) -> Any:
    """``handler500``: JSON under ``/api/`` (REST clients parse it), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": INTERNAL, "message": INTERNAL_MESSAGE}, status=500)
    return defaults.server_error(request)


def page_not_found(request: HttpRequest, exception: Exception) -> Any:
    """``handler404``: JSON under ``/api/`` (a path no route matches, e.g. ``/api/users/x/profile``
    or ``/api/conversations/-1``), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"code": NOT_FOUND, "message": "No such endpoint or object."}, status=404
        )
    return defaults.page_not_found(request, exception)


def _first(value: Any) -> Any:
    if isinstance(value, list) and value:
        return str(value[0])
    if isinstance(value, dict):
        return {k: _first(v) for k, v in value.items()}
    return str(value)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; a body nested too deeply to parse is a 400, not a 500.

    DRF turns only ``ValueError`` into ``parse_error``; ``[`` x 5,000 raises
    ``RecursionError``.
    """

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None


def json_object(request: Request) -> dict[str, Any]:
    """Return the request's JSON body, or raise ``invalid`` unless it is an object."""
    if not isinstance(request.data, dict):
        raise Invalid("Send a JSON object.")
    return request.data


def int_param(request: Request, name: str) -> int | None:
    """Return query parameter ``name`` as an integer (None when absent), or raise ``invalid``."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:  # "" too is not an integer (the schema says integer; the API fuzz test holds it)
        return int(raw)
    except ValueError:
        raise Invalid(f"{name} must be an integer.") from None


# Codes DRF itself answers with before a view runs (authentication, parsing, routing).
DRF_CODES = (
    "not_authenticated",
    "authentication_failed",
    "permission_denied",
    "method_not_allowed",
    "unsupported_media_type",
    "parse_error",
)

# Which error statuses an operation documents: every operation can answer 400 (bad input)
# and, unless it allows anonymous use, 401/403; those with a path id also 404.
ERROR_DESCRIPTIONS = {
    "400": "invalid (or bad_json): the request is not valid; fields says why.",
    "401": "not_authenticated: log in, or send Authorization: Token <key>.",
    "403": "forbidden / permission_denied: not yours to see or change.",
    "404": "not_found: no such object (or not visible to you).",
    "409": "conflict: the request clashes with the current state.",
    "429": "rate_limited: too many requests; see Retry-After.",
    "503": "unavailable: a bounded resource is full, or a service the server needs is away;"
    " try again after Retry-After.",
}


def schema_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: Any
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document the error responses of every operation."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(
        "Error",
        {
            "type": "object",
            "description": (
                "The one error body of every operation (docs/protocol.md, Error codes): switch "
                "on code, show message. The other fields come with some codes only."
            ),
            "properties": {
                "code": {"type": "string", "enum": sorted({*STATUS_BY_CODE, *DRF_CODES})},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "invalid from a form-like request: the problem of each field.",
                },
                "retry_after": {
                    "type": "integer",
                    "description": "rate_limited: seconds until a retry may succeed.",
                },
                "match_id": {
                    "type": "integer",
                    "description": "conflict when entering Meet: the match I am in.",
                },
                "limit": {
                    "type": "integer",
                    "description": (
                        "invalid for a text over its bound: the bound, in characters; "
                        "request_limit: the messages a request may hold before it is accepted."
                    ),
                },
            },
            "required": ["code", "message"],
            # Every extra field a ServiceError carries is listed above: a new one must be.
            "additionalProperties": False,
        },
    )
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = ["400"]
            if {} not in operation.get("security", []):  # {} there: anonymous allowed
                statuses += ["401", "403"]
            if "{" in path:
                statuses.append("404")
            statuses += operation.pop("x-errors", [])
            for status in statuses:
                operation["responses"].setdefault(
                    status, {"description": ERROR_DESCRIPTIONS[status], **ref}
                )
            if operation.pop("x-closed-body", False):
                _close_request_body(operation, components)
    return result


def _close_request_body(operation: dict[str, Any], components: dict[str, Any]) -> None:
    """Say ``additionalProperties: false`` of a request body whose view refuses unknown fields
    (``extend_schema(extensions={"x-closed-body": True})``)."""
    for media in operation.get("requestBody", {}).get("content", {}).values():
        schema = media.get("schema", {})
        if "$ref" in schema:
            schema = components[schema["$ref"].rsplit("/", 1)[1]]
        schema["additionalProperties"] = False
