"""The OpenAPI schema endpoint, and a reference page rendered from it on the server: no scripts, no external assets."""
from __future__ import annotations

import json

from django.shortcuts import render
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularJSONAPIView
from rest_framework.permissions import AllowAny

from .schema import ServedSchemaGenerator

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def type_label(schema: dict | None) -> str:
    """A short human reading of a JSON schema: ``Customer``, ``array of integer``, ``string (date-time) or null``."""
    if not schema:
        return ""
    if "$ref" in schema:
        label = schema["$ref"].rsplit("/", 1)[-1]
    elif any(key in schema for key in ("oneOf", "anyOf", "allOf")):
        parts = schema.get("oneOf") or schema.get("anyOf") or schema.get("allOf")
        label = " | ".join(dict.fromkeys(filter(None, (type_label(part) for part in parts))))  # each once, in order
    elif "enum" in schema:
        label = "one of " + ", ".join(json.dumps(value, ensure_ascii=False) for value in schema["enum"])
    elif schema.get("type") == "array":
        label = f"array of {type_label(schema.get('items'))}"
    elif schema.get("type") == "object" and "additionalProperties" in schema:
        label = f"object of {type_label(schema['additionalProperties']) or 'any'}"
    else:
        label = schema.get("type", "object")
        if schema.get("format"):
            label += f" ({schema['format']})"
    if schema.get("nullable"):
        label += " or null"
    return label


def ref_name(schema: dict | None) -> str:
    """The component a schema points at (directly or as array items), to link to its table."""
    if not schema:
        return ""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return ref_name(schema.get("items"))
    return ""


def _json_body(content: dict | None) -> dict | None:
    media = (content or {}).get("application/json")
    return media.get("schema") if media else None


def operations(schema: dict) -> list[dict]:
    rows = []
    for path, item in schema.get("paths", {}).items():
        for method in HTTP_METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = _json_body((op.get("requestBody") or {}).get("content"))
            rows.append({
                "anchor": op.get("operationId", f"{method}-{path}"),
                "method": method.upper(),
                "path": path,
                "summary": op.get("summary", ""),
                "description": op.get("description", ""),
                "secured": bool(op.get("security")),
                "parameters": [
                    {"name": p["name"], "in": p["in"], "required": p.get("required", False),
                     "type": type_label(p.get("schema")), "description": p.get("description", "")}
                    for p in op.get("parameters", [])
                ],
                "request": {"type": type_label(body), "ref": ref_name(body)} if body else None,
                "responses": [
                    {"code": code, "description": response.get("description", ""),
                     "type": type_label(_json_body(response.get("content"))),
                     "ref": ref_name(_json_body(response.get("content")))}
                    for code, response in sorted(op.get("responses", {}).items())
                ],
            })
    return rows


def components(schema: dict) -> list[dict]:
    rows = []
    for name, component in sorted(schema.get("components", {}).get("schemas", {}).items()):
        required = set(component.get("required", []))
        rows.append({
            "name": name,
            "description": component.get("description", ""),
            "type": type_label(component) if "properties" not in component else "",
            "fields": [
                {"name": field, "type": type_label(spec), "ref": ref_name(spec), "required": field in required,
                 "read_only": spec.get("readOnly", False), "description": spec.get("description", "")}
                for field, spec in component.get("properties", {}).items()
            ],
        })
    return rows


class SchemaView(SpectacularJSONAPIView):
    """The OpenAPI 3 schema as JSON, public like the page that renders it."""

    generator_class = ServedSchemaGenerator
    serve_public = True
    permission_classes = [AllowAny]
    authentication_classes = []


@require_GET
def docs_page(request):
    schema = ServedSchemaGenerator().get_schema(request=None, public=True)
    info = schema.get("info", {})
    response = render(request, "api/docs.html", {
        "title": info.get("title", "API"),
        "version": info.get("version", ""),
        "description": info.get("description", ""),
        "security_schemes": sorted(schema.get("components", {}).get("securitySchemes", {}).items()),
        "operations": operations(schema),
        "components": components(schema),
    })
    # The page needs nothing from elsewhere and runs no script; say so to the browser.
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    return response
