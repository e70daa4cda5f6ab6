"""OpenAPI: the Bearer token scheme and the API-wide description (imported from ``ApiConfig.ready()``)."""
from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.plumbing import build_bearer_security_scheme_object

ERRORS_DESCRIPTION = """

## Authentication
Send `Authorization: Bearer <token>` with every request. A missing, wrong, revoked or expired token gives 401 with
`WWW-Authenticate: Bearer`.

- **Integration tokens** (`dgl_…`), made by an admin in the admin (API tokens) or with
  `dangol token create --integration NAME --unit CODE --scope customers:read --scope orders:write`, are shown once,
  stored hashed, limited to their business units and scopes: `<resource>:read` for GET, `<resource>:write` for the
  other methods (write includes read). Resources: customers, consents, orders, points, coupons, segments, campaigns,
  cases, messages, privacy. A missing scope gives 403 naming it.
- **Personal tokens** of a staff account (`dangol token create --user USERNAME`) act as that account, every scope.

## Retries: `Idempotency-Key`
Send `Idempotency-Key: <any unique string up to 255 characters>` with a POST (e.g. the till's receipt number) and a
retry of the same request returns the first answer (same status and body, header `Idempotent-Replayed: true`)
instead of booking the sale or the redemption twice. Keys are kept 24 hours per token. The same key with another
body gives 422 (`idempotency_key_reused`); while the first request is still running, 409 (`idempotency_key_in_use`).

## Paging
Lists take `limit` (at most 200) and either `offset` (answers carry `count`, `next`, `previous`) or `cursor`: send an
empty `cursor` for the first page and then each page's `next_cursor` (null on the last page). Cursor pages stay
right while rows are added and cost no count. A malformed cursor gives 400.

## Rate limits
Requests are counted per token (DANGOL_API_TOKEN_RATE, or the token's own rate). Over the limit: 429 (`throttled`)
with `Retry-After` in seconds.

## Webhooks
Endpoints set up by an admin receive `POST` requests with the JSON body
`{"id": "<event id>", "type": "<event>", "created": "<time>", "data": {...}}` and the header
`Dangol-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the endpoint's secret>`. Compare in
constant time, refuse timestamps older than 5 minutes, and treat the event id as an idempotency key. Anything but a
2xx answer is retried after 30 s, 1, 2, 4… minutes (at most 6 hours apart, 8 attempts).

## Errors
Every error response has one JSON shape:

    {"detail": "Invalid input.", "code": "invalid", "errors": {"name": ["This field is required."]}}

- `detail`: a summary for people; `code`: a stable machine code (`invalid`, `parse_error`, `not_authenticated`,
  `authentication_failed`, `permission_denied`, `not_found`, `method_not_allowed`, `duplicate_phone`…).
- `errors`: each bad field with its messages. Nested fields are dotted (`birthday.month`, `lines.0.quantity`);
  problems of an order line found by the sales rules are reported under `lines` as `"<line number>: <problem>"`;
  problems not tied to one field are under `non_field_errors`. Empty (`{}`) when no field is concerned.
- 400 invalid input or malformed JSON · 401 no or wrong token · 403 a business unit outside your scope, or a scope
  the token lacks ·
  404 not found, or a customer or order outside your business units · 405 method not allowed ·
  409 the phone number already belongs to a customer (the body adds
  `duplicates: {"ids": [...visible customer ids], "elsewhere": <matches in units you cannot see>}`;
  send `allow_duplicate: true` to save anyway), or an `Idempotency-Key` still in use · 413 a body over 2.5 MB ·
  415 a body that is not `application/json` · 422 an `Idempotency-Key` reused for another request · 429 too many
  requests.

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


class ServedSchemaGenerator(DangolSchemaGenerator):
    """The schema served at /api/v1/openapi.json and rendered at /api/v1/docs: with the common answers of every
    operation (``add_common_responses``). The bare generator leaves them out so that each view's own documented
    answers can be read (and pinned by tests) alone."""

    def get_schema(self, request=None, public=False):
        schema = super().get_schema(request=request, public=public)
        add_common_responses(schema)
        return schema


COMMON_MEANINGS = {
    "400": "Invalid input: a bad query parameter, cursor or Idempotency-Key.",
    "401": "No token, or a wrong, revoked or expired one.",
    "403": "A business unit outside your scope, or a scope the token lacks.",
    "409": "The Idempotency-Key is still in use by a request being processed.",
    "413": "The request body is too large.",
    "415": "The body is not application/json.",
    "422": "The Idempotency-Key was used for a different request.",
    "429": "Too many requests for this token; see Retry-After.",
}
IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Makes a retry safe: the same key and body within 24 hours return the first answer.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def add_common_responses(schema: dict) -> None:
    """Every secured operation documents the answers the API's common layers give (authentication, scopes, rate
    limit, idempotency, body limits), in the one error shape, so clients and Schemathesis know them all."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    if "Error" not in schema.get("components", {}).get("schemas", {}):
        return
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete") or not operation.get("security"):
                continue
            codes = ["401", "403", "429"]
            if any(p.get("in") == "query" for p in operation.get("parameters", [])):
                codes.append("400")
            if method in ("post", "put", "patch"):
                codes += ["400", "413", "415"]
            if method == "post":
                codes += ["409", "422"]
                names = {(p.get("in"), p.get("name")) for p in operation.get("parameters", [])}
                if ("header", "Idempotency-Key") not in names:
                    operation.setdefault("parameters", []).append(dict(IDEMPOTENCY_PARAMETER))
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(code, {"description": COMMON_MEANINGS[code], "content": error})
