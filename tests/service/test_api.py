"""The cases API: list, open, read, move along the workflow, notes and replies; scope, permissions and errors."""
from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from dangol.service.models import Case, CaseEntry

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get_or_create(user=user)[0].key}", HTTP_ACCEPT_LANGUAGE="en")
    return client


def test_it_opens_lists_reads_and_moves_a_case(bora, customer):
    api = client_for(bora)
    created = api.post("/api/v1/cases", {"customer": customer.pk, "type": "as", "channel": "phone",
                                         "description": "Frame hinge broke\nbought last week"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["subject"] == "Frame hinge broke" and body["status"] == "new" and body["unit"] == "bakery"
    assert body["customer_name"] == "김*늘" and body["overdue"] is False
    case_id = body["id"]

    listed = api.get("/api/v1/cases?status=open").json()
    assert [c["id"] for c in listed["results"]] == [case_id]

    moved = api.post(f"/api/v1/cases/{case_id}/status", {"status": "in_progress", "note": "Called back"}, format="json")
    assert moved.status_code == 200 and moved.json()["status"] == "in_progress"
    assert moved.json()["entries"][-1]["body"] == "Called back"

    bad = api.post(f"/api/v1/cases/{case_id}/status", {"status": "new"}, format="json")
    assert bad.status_code == 400
    assert "it can become" in bad.json()["errors"]["status"][0]

    note = api.post(f"/api/v1/cases/{case_id}/entries", {"kind": "reply", "body": "Bring the frame any day."}, format="json")
    assert note.status_code == 201 and note.json()["message"] is not None


def test_bad_input_gives_400_per_field_and_writes_nothing(bora, customer, mina):
    api = client_for(bora)
    response = api.post("/api/v1/cases", {"customer": customer.pk, "type": "praise", "priority": "asap"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"type", "priority"}
    response = api.post("/api/v1/cases", {"customer": customer.pk, "type": "inquiry"}, format="json")
    assert response.status_code == 400 and "subject" in response.json()["errors"]
    response = api.post("/api/v1/cases", {"customer": customer.pk, "type": "inquiry", "subject": "x", "assignee": "mina"},
                        format="json")
    assert response.status_code == 400 and "assignee" in response.json()["errors"]
    assert Case.objects.count() == 0 and CaseEntry.objects.count() == 0


def test_other_units_cases_are_404_and_other_units_403(bora, mina, case, customer):
    api = client_for(mina)
    assert api.get(f"/api/v1/cases/{case.pk}").status_code == 404
    assert api.post(f"/api/v1/cases/{case.pk}/status", {"status": "in_progress"}, format="json").status_code == 404
    assert api.get("/api/v1/cases").json()["count"] == 0
    bora_api = client_for(bora)
    response = bora_api.post("/api/v1/cases", {"customer": customer.pk, "unit": "seoul-hotel", "type": "inquiry", "subject": "x"},
                             format="json")
    assert response.status_code == 403
    assert client_for(bora).get("/api/v1/cases?overdue=true").json()["count"] == 0
    assert APIClient().get("/api/v1/cases").status_code == 401


def test_the_list_runs_a_fixed_number_of_queries(bora, customer, units, django_assert_max_num_queries):
    from dangol.core.audit import Actor
    from dangol.service import services

    for i in range(15):
        services.open_case(actor=Actor(user=bora), customer=customer, unit=units["bakery"], case_type="inquiry",
                           channel="phone", subject=f"Question {i}", confirm=False)
    api = client_for(bora)
    with django_assert_max_num_queries(8):
        response = api.get("/api/v1/cases")
    assert response.json()["count"] == 15


def test_integration_tokens_need_the_cases_scopes(units, customer, case):
    from django.core.cache import cache

    from dangol.api import tokens
    from dangol.core.audit import Actor

    cache.clear()
    reader = tokens.create_token(actor=Actor.system("test"), name="help desk", scopes=["cases:read"], units=[units["bakery"]])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {reader.key}")
    assert [c["id"] for c in api.get("/api/v1/cases").json()["results"]] == [case.pk]
    refused = api.post(f"/api/v1/cases/{case.pk}/status", {"status": "in_progress"}, format="json")
    assert refused.status_code == 403
    assert Case.objects.get(pk=case.pk).status == "new"
