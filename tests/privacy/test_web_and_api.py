"""The privacy pages and endpoints: who may do what, reasons asked for every download and logged, one-click
withdrawal, the erasure confirmation, the access log review and its CSV, bad input answered with 4xx."""
from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from dangol.core.models import AuditEvent
from dangol.customers.models import Customer
from dangol.privacy.models import AccessReason, DataSubjectRequest

from .conftest import PII

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def web(client, user):
    client.force_login(user)
    return client


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def hong(make_customer):
    return make_customer("seoul-hotel", name=PII["name"], phone=PII["phone"], email=PII["email"],
                         consents=[("sms", "marketing", True)])


# ---- web ----

def test_the_privacy_page_masks_the_name_and_withdraws_in_one_click(client, mina, hong):
    web(client, mina)
    page = client.get(reverse("web:privacy_customer", args=[hong.pk]), **EN)
    assert page.status_code == 200
    body = page.content.decode()
    assert "홍*동" in body and PII["name"] not in body and PII["phone_digits"] not in body
    assert 'data-testid="withdraw-marketing-sms-marketing"' in body
    response = client.post(reverse("web:privacy_withdraw", args=[hong.pk]),
                           {"kind": "marketing", "channel": "sms", "purpose": "marketing"}, **EN)
    assert response.status_code == 302
    assert not hong.consents.order_by("-at", "-id").first().granted


def test_a_customer_outside_the_units_is_404_everywhere(client, bora, hong):
    web(client, bora)
    for name in ("web:privacy_customer", "web:privacy_export", "web:privacy_erase"):
        assert client.get(reverse(name, args=[hong.pk])).status_code == 404
    assert client.post(reverse("web:privacy_withdraw", args=[hong.pk]), {"kind": "marketing"}).status_code == 404


def test_an_export_asks_for_a_reason_and_logs_it(client, mina, hong):
    web(client, mina)
    url = reverse("web:privacy_export", args=[hong.pk])
    assert client.get(url, **EN).status_code == 200
    assert not AuditEvent.objects.filter(action__startswith="privacy.export").exists()  # the form alone shows nothing
    refused = client.post(url, {"format": "json", "reason": "other", "reason_detail": ""}, **EN)
    assert refused.status_code == 422 and not AuditEvent.objects.filter(action__startswith="privacy.export").exists()
    response = client.post(url, {"format": "json", "reason": "dsr"}, REMOTE_ADDR="10.1.2.3", **EN)
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    data = json.loads(response.content)
    assert data["profile"]["name"] == PII["name"]
    event = AuditEvent.objects.get(action="privacy.export_json")
    assert (event.actor, event.ip, event.object_id, event.access_reason.code) == (mina, "10.1.2.3", str(hong.pk), "dsr")
    page = client.post(url, {"format": "html", "reason": "other", "reason_detail": "분쟁 조정 자료"}, **EN)
    assert page.status_code == 200 and PII["email"] in page.content.decode()
    assert AccessReason.objects.get(audit_event__action="privacy.export_html").detail == "분쟁 조정 자료"


def test_staff_may_register_a_request_but_not_export_or_erase(client, bora, make_customer):
    customer = make_customer("bakery")
    web(client, bora)
    assert client.get(reverse("web:privacy_export", args=[customer.pk])).status_code == 403
    assert client.get(reverse("web:privacy_erase", args=[customer.pk])).status_code == 403
    response = client.post(reverse("web:privacy_open_request", args=[customer.pk]),
                           {"kind": "access", "received_via": "store", "details": ""}, **EN)
    assert response.status_code == 302
    dsr = DataSubjectRequest.objects.get()
    assert client.post(reverse("web:privacy_request_action", args=[dsr.pk, "complete"])).status_code == 403


def test_erasure_needs_the_confirmation_and_an_admin(client, alice, mina, hong):
    web(client, mina)
    assert client.get(reverse("web:privacy_erase", args=[hong.pk])).status_code == 403
    web(client, alice)
    url = reverse("web:privacy_erase", args=[hong.pk])
    confirm = client.get(url, **EN)
    assert confirm.status_code == 200 and b"Erase for good" in confirm.content
    wrong = client.post(url, {"confirm": str(hong.pk + 1)}, **EN)
    assert wrong.status_code == 422
    hong.refresh_from_db()
    assert hong.erased_at is None
    assert client.post(url, {"confirm": f"#{hong.pk}"}, **EN).status_code == 302
    hong.refresh_from_db()
    assert hong.erased_at and hong.name == f"삭제된 고객 #{hong.pk}"


def test_the_board_and_a_correction_through_the_pages(client, mina, hong):
    web(client, mina)
    client.post(reverse("web:privacy_open_request", args=[hong.pk]),
                {"kind": "correction", "received_via": "phone", "details": "이메일 변경"}, **EN)
    dsr = DataSubjectRequest.objects.get()
    board = client.get(reverse("web:privacy_requests"), **EN).content.decode()
    assert f'data-testid="request-{dsr.pk}"' in board and "홍*동" in board and PII["name"] not in board
    bad = client.post(reverse("web:privacy_request_action", args=[dsr.pk, "correct"]), {"email": "not-an-email"}, **EN)
    assert bad.status_code == 422 and b"valid email" in bad.content
    ok = client.post(reverse("web:privacy_request_action", args=[dsr.pk, "correct"]), {"email": "new@example.com"}, **EN)
    assert ok.status_code == 302
    dsr.refresh_from_db()
    assert dsr.status == "done"
    assert hong.contacts.filter(kind="email", is_primary=True).get().value == "new@example.com"
    assert client.post(reverse("web:privacy_request_action", args=[dsr.pk, "explode"])).status_code in (404, 422)


def test_the_access_log_is_for_admins_by_month_and_its_csv_is_itself_logged(client, alice, mina, hong):
    web(client, mina)
    client.post(reverse("web:customer_reveal_contacts", args=[hong.pk]), REMOTE_ADDR="10.9.8.7")
    assert client.get(reverse("web:privacy_access_log")).status_code == 403
    web(client, alice)
    page = client.get(reverse("web:privacy_access_log"), **EN).content.decode()
    assert "customer.view_contacts" in page and "10.9.8.7" in page and "mina" in page
    assert client.get(reverse("web:privacy_access_log") + "?month=1999-99", **EN).status_code == 200  # bad month: this month
    empty = client.get(reverse("web:privacy_access_log") + "?month=2001-01", **EN).content.decode()
    assert "customer.view_contacts" not in empty

    no_reason = client.post(reverse("web:privacy_access_log_csv"), {"month": ""})
    assert no_reason.status_code == 302 and not AuditEvent.objects.filter(action="privacy.access_log_export").exists()
    response = client.post(reverse("web:privacy_access_log_csv"), {"reason": "audit"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["at (Asia/Seoul)", "account", "ip", "via", "action"]
    assert any(r[1] == "mina" and r[2] == "10.9.8.7" and r[4] == "customer.view_contacts" and r[6] == str(hong.pk) for r in rows[1:])
    assert PII["name"] not in response.content.decode()
    assert AuditEvent.objects.get(action="privacy.access_log_export").access_reason.code == "audit"


def test_a_sensitive_note_is_revealed_only_on_request_and_audited(client, mina, hong):
    web(client, mina)
    client.post(reverse("web:privacy_sensitive_note", args=[hong.pk]), {"text": PII["sensitive"]})
    note = hong.interactions.get(sensitive=True)
    page = client.get(reverse("web:privacy_customer", args=[hong.pk])).content.decode()
    assert PII["sensitive"] not in page
    shown = client.post(reverse("web:privacy_reveal_note", args=[hong.pk, note.pk]))
    assert PII["sensitive"] in shown.content.decode()
    assert AuditEvent.objects.filter(action="customer.view_sensitive_note", object_id=str(hong.pk)).count() == 1


def test_the_panel_links_the_privacy_page_from_the_360_page(client, mina, hong):
    web(client, mina)
    page = client.get(reverse("web:customer_detail", args=[hong.pk]), **EN).content.decode()
    assert 'data-testid="privacy-panel"' in page and reverse("web:privacy_customer", args=[hong.pk]) in page


# ---- API ----

def test_api_consents_evidence_grant_and_withdraw(mina, hong):
    client = api(mina)
    url = f"/api/v1/customers/{hong.pk}/consents"
    evidence = client.get(url)
    assert evidence.status_code == 200
    record = evidence.json()["in_force"][0]
    assert (record["kind"], record["channel"], record["notice"]["version"]) == ("marketing", "sms", "v1")
    granted = client.post(url, {"kind": "required"}, format="json")
    assert granted.status_code == 201 and {c["kind"] for c in granted.json()["in_force"]} == {"required", "marketing"}
    withdrawn = client.post(f"{url}/withdraw", {"kind": "marketing", "channel": "sms"}, format="json")
    assert withdrawn.status_code == 200 and [c["kind"] for c in withdrawn.json()["in_force"]] == ["required"]
    assert client.post(f"{url}/withdraw", {"kind": "marketing", "channel": "sms"}, format="json").status_code == 400


@pytest.mark.parametrize("body", [
    {"kind": "marketing", "channel": "fax"},
    {"kind": "required", "channel": "sms"},
    {"kind": "required", "colour": "blue"},
    {"kind": ["required"]},
    {"kind": "required", "notice_version": "v999"},
    {"kind": "marketing", "channel": "sms", "method": "x" * 61},
    {"kind": "'; DROP TABLE customers_consent; --"},
    {"kind": "required", "method": "\u0000\ud7a3" * 10},
])
def test_api_bad_consent_input_is_a_clear_400_and_changes_nothing(mina, hong, body):
    before = hong.consents.count()
    response = api(mina).post(f"/api/v1/customers/{hong.pk}/consents", body, format="json")
    assert response.status_code == 400 and response.json()["errors"]
    assert hong.consents.count() == before


def test_api_export_needs_a_reason_a_manager_and_the_scope(alice, mina, bora, hong):
    assert api(mina).get(f"/api/v1/customers/{hong.pk}/export").status_code == 400
    assert api(bora).get(f"/api/v1/customers/{hong.pk}/export?reason=dsr").status_code == 404
    response = api(mina).get(f"/api/v1/customers/{hong.pk}/export?reason=dsr")
    assert response.status_code == 200 and response.json()["profile"]["name"] == PII["name"]
    event = AuditEvent.objects.get(action="privacy.export_json")
    assert event.via == "api" and event.access_reason.code == "dsr"


def test_api_requests_lifecycle(alice, mina, hong):
    client = api(mina)
    created = client.post("/api/v1/privacy/requests", {"customer": hong.pk, "kind": "suspension"}, format="json")
    assert created.status_code == 201
    dsr = created.json()
    assert dsr["status"] == "received" and dsr["overdue"] is False
    assert client.get("/api/v1/privacy/requests?status=open").json()["results"][0]["id"] == dsr["id"]
    assert client.get("/api/v1/privacy/requests?status=bogus").status_code == 400
    done = client.post(f"/api/v1/privacy/requests/{dsr['id']}/complete", {}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "done"
    assert Customer.objects.get(pk=hong.pk).processing_suspended
    assert client.post(f"/api/v1/privacy/requests/{dsr['id']}/complete", {}, format="json").status_code == 400

    deletion = client.post("/api/v1/privacy/requests", {"customer": hong.pk, "kind": "deletion"}, format="json").json()
    assert client.post(f"/api/v1/privacy/requests/{deletion['id']}/complete", {}, format="json").status_code == 403
    assert api(alice).post(f"/api/v1/privacy/requests/{deletion['id']}/complete", {}, format="json").status_code == 200
    assert Customer.objects.get(pk=hong.pk).erased_at is not None


@pytest.mark.parametrize("body", [
    {"customer": 10**30, "kind": "access"},
    {"customer": "abc", "kind": "access"},
    {"kind": "access"},
    {"customer": 1, "kind": "teleport"},
    {"customer": 1, "kind": "access", "received_at": "2026-01-01T00:00:00"},
    {"customer": 1, "kind": "access", "details": "가" * 2001},
])
def test_api_bad_requests_are_4xx_and_write_nothing(mina, body):
    response = api(mina).post("/api/v1/privacy/requests", body, format="json")
    assert 400 <= response.status_code < 500
    assert not DataSubjectRequest.objects.exists()


@pytest.mark.parametrize("count", [2, 8])
def test_the_board_and_the_api_list_cost_the_same_queries_whatever_the_number_of_requests(
        client, mina, make_customer, django_assert_num_queries, count):
    from dangol.core.audit import Actor
    from dangol.privacy import services as privacy

    for i in range(count):
        privacy.open_request(actor=Actor(user=mina, via="test"), customer=make_customer("seoul-hotel", name=f"고객{i}"),
                             kind="access")
    web(client, mina)
    client.get(reverse("web:privacy_requests"))  # warm the session and the nav
    with django_assert_num_queries(QUERIES["board"]):
        assert client.get(reverse("web:privacy_requests")).status_code == 200
    with django_assert_num_queries(QUERIES["api"]):
        assert len(api(mina).get("/api/v1/privacy/requests").json()["results"]) == count


QUERIES = {"board": 4, "api": 2}  # the board: session, user, open, closed; the API: count, page


def test_an_admin_marks_the_month_reviewed(client, alice):
    web(client, alice)
    page = client.get(reverse("web:privacy_access_log") + "?month=2026-10", **EN).content.decode()
    assert "Not reviewed yet." in page
    response = client.post(reverse("web:privacy_access_log_review"), {"month": "2026-10", "note": "이상 없음"})
    assert response.status_code == 302 and response["Location"].endswith("?month=2026-10")
    page = client.get(reverse("web:privacy_access_log") + "?month=2026-10", **EN).content.decode()
    assert "Reviewed by alice" in page and "이상 없음" in page
    assert "Not reviewed yet." in client.get(reverse("web:privacy_access_log") + "?month=2026-09", **EN).content.decode()


def test_a_sensitive_note_shows_only_a_lock_on_the_timeline(client, mina, hong):
    web(client, mina)
    client.post(reverse("web:privacy_sensitive_note", args=[hong.pk]), {"text": PII["sensitive"]})
    page = client.get(reverse("web:customer_detail", args=[hong.pk])).content.decode()
    assert "🔒" in page and PII["sensitive"] not in page
