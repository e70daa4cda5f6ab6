"""One JSON shape for every error of the API.

    {"detail": "<summary for people>", "code": "<machine code>", "errors": {"<field>": ["<message>", ...]}}

``errors`` maps each bad field to its messages. Nested fields are dotted (``birthday.month``,
``lines.0.quantity``); problems not tied to one field are under ``non_field_errors``. Errors that concern no
field (401, 403, 404, 405, 415, 429) have ``errors: {}``. A few errors add one documented key (409 adds
``duplicates``).

Services raise ``django.core.exceptions.ValidationError`` keyed by field; they become 400 responses here, so a
view never has to catch them.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler


class Conflict(exceptions.APIException):
    """409: the write would clash with existing data; ``extra`` is added to the error body."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."
    default_code = "conflict"

    def __init__(self, detail: str, *, code: str, errors: dict[str, list[str]] | None = None,
                 extra: dict[str, Any] | None = None):
        super().__init__(detail=detail, code=code)
        self.errors = errors or {}
        self.extra = extra or {}


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=django_error_dict(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, (DataError, OverflowError)):
        # A value the database cannot hold (a number past its column's range: DataError on PostgreSQL,
        # OverflowError from SQLite's driver) that no serializer caught: the
        # service's transaction has rolled back; the client gets a 400, not a 500.
        exc = exceptions.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [_("A value is out of the range that can be stored.")]})
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    response.data = error_body(exc)
    return response


def django_error_dict(exc: DjangoValidationError) -> dict[str, list[str]]:
    non_field_key = api_settings.NON_FIELD_ERRORS_KEY
    if hasattr(exc, "error_dict"):
        return {non_field_key if key == NON_FIELD_ERRORS else key: messages for key, messages in exc.message_dict.items()}
    return {non_field_key: exc.messages}


def error_body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        return {"detail": _("Invalid input."), "code": "invalid", "errors": flatten_errors(exc.detail)}
    detail = exc.detail
    body = {
        "detail": str(detail),
        "code": getattr(detail, "code", None) or exc.default_code,
        "errors": flatten_errors(getattr(exc, "errors", {})),
    }
    body.update(getattr(exc, "extra", {}))
    return body


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error structure as ``{"a.b.0.c": ["message"]}``."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            # A nested object's own non-field problem ("expected an object") belongs to the object's field.
            if prefix and key == api_settings.NON_FIELD_ERRORS_KEY:
                name = prefix
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            for field, messages in flatten_errors(value, name).items():
                flat.setdefault(field, []).extend(messages)
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or api_settings.NON_FIELD_ERRORS_KEY: [str(item) for item in detail]} if detail else {}
        flat = {}
        for index, value in enumerate(detail):
            # ListSerializer gives one entry per item, empty for the good ones.
            for field, messages in flatten_errors(value, f"{prefix}.{index}" if prefix else str(index)).items():
                flat.setdefault(field, []).extend(messages)
        return flat
    return {prefix or api_settings.NON_FIELD_ERRORS_KEY: [str(detail)]}


@csrf_exempt  # it changes nothing; without this a POST to an unknown path got the HTML CSRF page instead of a JSON 404
def not_found(request, *args, **kwargs):
    """Unknown paths under /api/v1/ answer in the API's error shape instead of the staff app's HTML page."""
    return JsonResponse({"detail": _("Not found."), "code": "not_found", "errors": {}}, status=404)
