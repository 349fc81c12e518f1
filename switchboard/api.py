"""Shared REST plumbing: one error shape for every 4xx."""

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """Return every API error as ``{"code": ..., "message": ..., "fields": {...}}``."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
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


def _first(value):
    if isinstance(value, list) and value:
        return str(value[0])
    if isinstance(value, dict):
        return {k: _first(v) for k, v in value.items()}
    return str(value)


def error_response(code: str, message: str, http_status: int = status.HTTP_400_BAD_REQUEST):
    """Return an error response in the shared shape."""
    return Response({"code": code, "message": message}, status=http_status)
