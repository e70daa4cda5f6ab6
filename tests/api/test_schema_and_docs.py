import json

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from dangol.api.schema import DangolSchemaGenerator

EXPECTED = {
    "/api/v1/customers": {"get", "post"},
    "/api/v1/customers/lookup": {"get"},
    "/api/v1/customers/{id}": {"get", "patch"},
    "/api/v1/customers/{id}/orders": {"get"},
    "/api/v1/orders": {"post"},
    "/api/v1/orders/{id}/refund": {"post"},
    "/api/v1/customers/{id}/points": {"get"},
    "/api/v1/customers/{id}/points/entries": {"get"},
    "/api/v1/customers/{id}/points/redeem": {"post"},
    "/api/v1/customers/{id}/points/adjust": {"post"},
    "/api/v1/customers/{id}/coupons/{coupon_id}/use": {"post"},
    "/api/v1/customers/{id}/referral": {"post"},
    "/api/v1/loyalty/members/lookup": {"post"},
    "/api/v1/customers/{id}/stamps": {"get", "post"},
    "/api/v1/customers/{id}/consents": {"get", "post"},
    "/api/v1/customers/{id}/consents/withdraw": {"post"},
    "/api/v1/customers/{id}/export": {"get"},
    "/api/v1/privacy/requests": {"get", "post"},
    "/api/v1/privacy/requests/{id}": {"get"},
    "/api/v1/privacy/requests/{id}/complete": {"post"},
    "/api/v1/privacy/requests/{id}/refuse": {"post"},
    "/api/v1/cases": {"get", "post"},
    "/api/v1/cases/{id}": {"get"},
    "/api/v1/cases/{id}/status": {"post"},
    "/api/v1/cases/{id}/entries": {"post"},
    "/api/v1/segments": {"get"},
    "/api/v1/segments/count": {"post"},
    "/api/v1/segments/{id}/count": {"get"},
    "/api/v1/segments/{id}/members": {"get"},
    "/api/v1/campaigns": {"get"},
    "/api/v1/campaigns/{id}": {"get"},
    "/api/v1/campaigns/{id}/results": {"get"},
    "/api/v1/coupons/validate": {"post"},
    "/api/v1/coupons/redeem": {"post"},
}


def test_the_schema_is_public_json_with_the_paths_and_the_bearer_scheme(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer wrong")  # a bad token must not lock anyone out of the schema

    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    schema = json.loads(response.content)
    assert {path: set(ops) for path, ops in schema["paths"].items()} == EXPECTED
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert all({"bearerAuth": []} in op["security"] for ops in schema["paths"].values() for op in ops.values())
    assert '"errors": {"name": ["This field is required."]}' in schema["info"]["description"]
    validate_schema(schema)


def test_the_schema_generated_offline_is_valid_openapi(db):
    validate_schema(SchemaGenerator().get_schema(request=None, public=True))
    schema = DangolSchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    create = schema["paths"]["/api/v1/customers"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/CustomerCreateRequest")
    assert set(create["responses"]) == {"201", "400", "401", "403", "409"}
    assert "name" in schema["components"]["schemas"]["CustomerCreateRequest"]["required"]
    listed = schema["paths"]["/api/v1/customers"]["get"]
    assert {"phone", "last4", "q", "stage", "unit", "tag", "limit", "offset"} <= {p["name"] for p in listed["parameters"]}


def test_the_docs_page_lists_every_endpoint_without_external_assets(db):
    response = APIClient().get("/api/v1/docs")

    assert response.status_code == 200
    html = response.content.decode()
    for path, methods in EXPECTED.items():
        assert path in html
    assert "CustomerCreateRequest" in html and "bearerAuth" in html
    assert "<script" not in html
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    assert "default-src 'none'" in response["Content-Security-Policy"]


def test_the_docs_page_escapes_what_the_schema_says(db, monkeypatch):
    monkeypatch.setattr("dangol.api.schema.ERRORS_DESCRIPTION", "<script>alert(1)</script><img src=x onerror=alert(2)>")

    html = APIClient().get("/api/v1/docs").content.decode()

    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
