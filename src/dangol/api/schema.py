"""OpenAPI: the Bearer token scheme and the API-wide description (imported from ``ApiConfig.ready()``)."""
from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.plumbing import build_bearer_security_scheme_object

ERRORS_DESCRIPTION = """

## Authentication
Send `Authorization: Bearer <token>` with every request. An administrator creates a token with
`dangol token create --user USERNAME`. A missing or wrong token gives 401 with `WWW-Authenticate: Bearer`.

## Errors
Every error response has one JSON shape:

    {"detail": "Invalid input.", "code": "invalid", "errors": {"name": ["This field is required."]}}

- `detail`: a summary for people; `code`: a stable machine code (`invalid`, `parse_error`, `not_authenticated`,
  `authentication_failed`, `permission_denied`, `not_found`, `method_not_allowed`, `duplicate_phone`…).
- `errors`: each bad field with its messages. Nested fields are dotted (`birthday.month`, `lines.0.quantity`);
  problems of an order line found by the sales rules are reported under `lines` as `"<line number>: <problem>"`;
  problems not tied to one field are under `non_field_errors`. Empty (`{}`) when no field is concerned.
- 400 invalid input or malformed JSON · 401 no or wrong token · 403 a business unit outside your scope ·
  404 not found, or a customer or order outside your business units · 405 method not allowed ·
  409 the phone number already belongs to a customer (the body adds
  `duplicates: {"ids": [...visible customer ids], "elsewhere": <matches in units you cannot see>}`;
  send `allow_duplicate: true` to save anyway) · 415 a body that is not `application/json`.

Invalid input never changes data: a request either succeeds as a whole or leaves the database as it was.

## Privacy
List rows show names and contacts masked for every role. The detail of a customer shows full phone numbers and
emails to managers and admins only, and each such view is written to the audit log; staff see them masked.
"""


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "dangol.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"
    priority = 1  # ahead of drf-spectacular's own scheme for TokenAuthentication subclasses

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(header_name="Authorization", token_prefix=self.target.keyword)
        scheme["description"] = "A token from `dangol token create --user USERNAME`."
        return scheme


class DangolSchemaGenerator(SchemaGenerator):
    """The settings' description followed by the authentication, error and privacy rules of the API."""

    def get_schema(self, request=None, public=False):
        schema = super().get_schema(request=request, public=public)
        schema["info"]["description"] = (schema["info"].get("description") or "") + ERRORS_DESCRIPTION
        return schema
