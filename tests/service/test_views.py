"""The staff pages and the public pages through the test client: the 360° panel, logging a case, the case page's
actions, the queue, the KPIs (managers only), the public request form (honeypot, fill time, rate limit, bad input) and
the survey page (once per invitation, wrong links)."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core.cache import cache
from django.test import Client

from dangol.core.audit import Actor
from dangol.customers.models import ContactPoint, Customer
from dangol.loyalty.models import Coupon
from dangol.messaging.models import Message
from dangol.service import public, services
from dangol.service.models import Case, CaseStatus, SurveyInvitation, SurveyResponse, Trait

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


def staff_client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_the_360_page_shows_traits_first_and_the_quick_case_buttons(bora, customer):
    services.add_trait(actor=Actor(user=bora), customer=customer, category="allergy", value="no nuts", source="counter", unit=None)
    page = staff_client(bora).get(f"/customers/{customer.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="service-panel"' in html and "no nuts" in html
    assert html.index("service-panel") < html.index('id="preferences"')
    assert f"/customers/{customer.pk}/cases/new/?type=complaint" in html


def test_logging_a_case_with_a_topic_and_save(bora, customer):
    client = staff_client(bora)
    form = client.get(f"/customers/{customer.pk}/cases/new/?type=complaint")
    assert form.status_code == 200 and "Waiting time" in form.content.decode()
    response = client.post(f"/customers/{customer.pk}/cases/new/", {
        "case_type": "complaint", "topic": "Waiting time", "subject": "", "description": "", "channel": "counter",
        "priority": "normal", "unit": customer.home_unit_id})
    case = Case.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/cases/{case.pk}/"
    assert case.subject == "Waiting time" and case.opened_by == bora


def test_a_case_without_subject_or_topic_shows_the_error_and_writes_nothing(bora, customer):
    response = staff_client(bora).post(f"/customers/{customer.pk}/cases/new/", {
        "case_type": "complaint", "channel": "counter", "priority": "normal", "unit": customer.home_unit_id})
    assert response.status_code == 200
    assert "Say in a few words what the case is about." in response.content.decode()
    assert Case.objects.count() == 0


def test_a_customer_of_another_unit_is_404(mina, customer):
    assert staff_client(mina).get(f"/customers/{customer.pk}/cases/new/").status_code == 404


def test_the_case_page_moves_the_case_and_gives_goodwill(bora, case, coupons):
    client = staff_client(bora)
    page = client.get(f"/cases/{case.pk}/")
    assert page.status_code == 200 and 'data-testid="to-in_progress"' in page.content.decode()
    client.post(f"/cases/{case.pk}/status/", {"status": "in_progress"})
    client.post(f"/cases/{case.pk}/entries/", {"kind": "note", "body": "Checked the batch"})
    response = client.post(f"/cases/{case.pk}/goodwill/", {"kind": "coupon", "template": coupons["small"].pk, "reason": "Stale bread"})
    assert response.status_code == 302
    assert Coupon.objects.filter(customer=case.customer, source_ref=f"case:{case.pk}").count() == 1
    big = client.post(f"/cases/{case.pk}/goodwill/", {"kind": "coupon", "template": coupons["big"].pk, "reason": "Stale bread"})
    assert big.status_code == 403 and "Only a manager" in big.content.decode()
    client.post(f"/cases/{case.pk}/status/", {"status": "resolved", "resolution": "New bread"})
    case.refresh_from_db()
    assert case.status == CaseStatus.RESOLVED and case.resolution == "New bread"
    bad = client.post(f"/cases/{case.pk}/status/", {"status": "waiting"}, follow=True)
    assert "cannot become" in bad.content.decode()


def test_priority_and_assignment_from_the_case_page(bora, jun, case):
    client = staff_client(bora)
    client.post(f"/cases/{case.pk}/priority/", {"priority": "urgent"})
    case.refresh_from_db()
    assert case.priority == "urgent" and case.due_at == case.opened_at + dt.timedelta(hours=4)
    wrong = client.post(f"/cases/{case.pk}/priority/", {"priority": "asap"}, follow=True)
    assert "Choose a priority." in wrong.content.decode()
    client.post(f"/cases/{case.pk}/assign/", {"assignee": str(jun.pk)})
    assert Case.objects.get(pk=case.pk).assignee == jun
    client.post(f"/cases/{case.pk}/assign/", {"assignee": "me"})
    assert Case.objects.get(pk=case.pk).assignee == bora
    client.post(f"/cases/{case.pk}/escalate/")
    assert Case.objects.get(pk=case.pk).escalated_to == jun


def test_the_queue_and_overdue_list(bora, case):
    client = staff_client(bora)
    assert f"/cases/{case.pk}/" in client.get("/cases/").content.decode()
    Case.objects.filter(pk=case.pk).update(due_at=case.opened_at.replace(year=2020))
    overdue = client.get("/cases/?view=overdue").content.decode()
    assert f"/cases/{case.pk}/" in overdue and "overdue" in overdue


def test_the_kpis_are_for_managers(bora, jun, case):
    assert staff_client(bora).get("/service/").status_code == 403
    page = staff_client(jun).get("/service/?days=30")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="kpi-open">1<' in html
    assert staff_client(jun).get("/service/?unit=seoul-hotel").status_code == 404


def test_traits_are_added_and_removed_from_the_360_page(bora, customer):
    client = staff_client(bora)
    client.post(f"/customers/{customer.pk}/traits/", {"category": "size", "value": "52 mm frame", "source": "observed"})
    trait = Trait.objects.get(customer=customer)
    assert trait.value == "52 mm frame" and trait.recorded_by == bora
    client.post(f"/customers/{customer.pk}/traits/{trait.pk}/remove/")
    assert Trait.objects.get(pk=trait.pk).removed_at is not None
    response = client.post(f"/customers/{customer.pk}/traits/", {"category": "size", "value": "", "source": "observed"}, follow=True)
    assert "This field is required." in response.content.decode()


# --- the public request form ---------------------------------------------------------------------------------------------

def form_data(units, **overrides):
    data = {"case_type": "as", "unit": units["bakery"].pk, "name": "이민호", "phone": "010-7777-8888", "product_text": "Frame",
            "message": "The hinge broke.", "website": "", "token": public.form_token(time.time() - 10)}
    data.update(overrides)
    return data


def test_a_public_request_creates_a_customer_and_a_case_and_confirms(units):
    response = Client(HTTP_ACCEPT_LANGUAGE="en").post("/help/", form_data(units))
    assert response.status_code == 200 and 'data-testid="request-number"' in response.content.decode()
    case = Case.objects.get()
    assert case.channel == "web" and case.case_type == "as" and case.subject == "The hinge broke."
    assert ContactPoint.objects.get(customer=case.customer).value == "+821077778888"
    assert Message.objects.filter(source=f"service:case:{case.pk}", occurrence="opened").exists()
    assert response["Cache-Control"].startswith("no-store")


def test_a_public_request_matches_the_customer_by_phone(units, customer):
    Client().post("/help/", form_data(units, phone="+82 10 2222 3333", name="Someone else"))
    case = Case.objects.get()
    assert case.customer_id == customer.pk and "Name given: Someone else" in case.description
    assert Customer.objects.count() == 1


def test_the_honeypot_answers_like_a_success_and_writes_nothing(units):
    response = Client().post("/help/", form_data(units, website="http://spam.example"))
    assert response.status_code == 200 and 'data-testid="request-sent"' in response.content.decode()
    assert Case.objects.count() == 0 and Customer.objects.count() == 0


@pytest.mark.parametrize("token", ["", "forged:token", public.form_token(time.time() + 3600)])
def test_a_missing_forged_or_too_fast_token_is_refused(units, token):
    response = Client(HTTP_ACCEPT_LANGUAGE="en").post("/help/", form_data(units, token=token))
    assert response.status_code == 400
    assert "send it again" in response.content.decode()
    assert Case.objects.count() == 0


def test_a_form_sent_within_the_minimum_fill_time_is_refused(units):
    response = Client(HTTP_ACCEPT_LANGUAGE="en").post("/help/", form_data(units, token=public.form_token()))
    assert response.status_code == 400 and "very fast" in response.content.decode()
    assert Case.objects.count() == 0


def test_bad_input_on_the_public_form_shows_errors_and_writes_nothing(units):
    response = Client(HTTP_ACCEPT_LANGUAGE="en").post("/help/", form_data(units, phone="12", message=" ", name="", unit=999))
    html = response.content.decode()
    assert response.status_code == 400
    assert 'data-testid="error-name"' in html and 'data-testid="error-message"' in html
    assert 'data-testid="error-unit"' in html
    response = Client(HTTP_ACCEPT_LANGUAGE="en").post("/help/", form_data(units, phone="12"))
    assert 'data-testid="error-phone"' in response.content.decode()
    assert Case.objects.count() == 0 and Customer.objects.count() == 0


def test_the_public_form_is_rate_limited_per_ip(units, settings):
    settings.DANGOL_SERVICE_FORM_PER_HOUR = 2
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    for i in range(2):
        assert client.post("/help/", form_data(units, message=f"Question {i}")).status_code == 200
    limited = client.post("/help/", form_data(units, message="Question 3"))
    assert limited.status_code == 429 and 'data-testid="rate-limited"' in limited.content.decode()
    assert Case.objects.count() == 2
    other = Client(REMOTE_ADDR="10.0.0.9")
    assert other.post("/help/", form_data(units, message="Question 4")).status_code == 200


# --- the survey page -------------------------------------------------------------------------------------------------------

@pytest.fixture
def invitation(bora, case):
    for status in ("in_progress", "resolved", "closed"):
        services.change_status(actor=Actor(user=bora), case=case, to_status=status)
    return SurveyInvitation.objects.get(case=case)


def test_the_survey_page_is_answered_once(invitation):
    url = services.survey_path(invitation.pk)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    page = client.get(url)
    assert page.status_code == 200 and 'data-testid="score-5"' in page.content.decode()
    bad = client.post(url, {"score": "9"})
    assert bad.status_code == 400 and 'data-testid="error-score"' in bad.content.decode()
    done = client.post(url, {"score": "4", "comment": "Quick and kind"})
    assert 'data-testid="survey-thanks"' in done.content.decode()
    again = client.post(url, {"score": "1"})
    assert 'data-testid="survey-already"' in again.content.decode()
    assert SurveyResponse.objects.get().score == 4


def test_a_wrong_survey_link_is_404(invitation):
    assert Client().get("/s/not-a-token/").status_code == 404
    token = services.survey_token(invitation.pk)
    assert Client().get(f"/s/{token[:-3]}abc/").status_code == 404


def test_the_queue_and_kpi_pages_run_a_fixed_number_of_queries(bora, jun, customer, units, make_customer,
                                                               django_assert_max_num_queries):
    def open_cases(n):
        for i in range(n):
            other = make_customer("bakery", name=f"손님{i}")
            services.open_case(actor=Actor(user=bora), customer=other, unit=units["bakery"], case_type="inquiry",
                               channel="phone", subject=f"Question {i}", confirm=False)

    open_cases(3)
    client = staff_client(jun)
    client.get("/cases/?view=open")  # warm the session
    with django_assert_max_num_queries(14) as few:
        client.get("/cases/?view=open")
    with django_assert_max_num_queries(40) as kpis_few:
        client.get("/service/")
    open_cases(12)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/cases/?view=open").content.decode().count('data-testid="queue-case"') == 15
    with django_assert_max_num_queries(len(kpis_few.captured_queries)):
        client.get("/service/")


def test_the_survey_link_of_an_erased_customer_is_404(invitation):
    from dangol.core import events

    events.emit("customer_erased", customer_id=invitation.customer_id)
    Customer.objects.filter(pk=invitation.customer_id).update(erased_at=invitation.sent_at)
    assert Client().get(services.survey_path(invitation.pk)).status_code == 404


def test_a_case_can_name_one_of_the_customers_recent_orders(bora, customer, products, make_customer):
    from dangol.sales.services import LineInput, record_order

    order = record_order(actor=Actor.system("test"), unit=products["croissant"].unit, customer=customer,
                         lines=[LineInput(product_id=products["croissant"].pk, quantity=2, unit_price=None)], at=None)
    stranger = make_customer("bakery", name="남남")
    other = record_order(actor=Actor.system("test"), unit=products["croissant"].unit, customer=stranger,
                         lines=[LineInput(product_id=products["croissant"].pk, quantity=1, unit_price=None)], at=None)
    client = staff_client(bora)
    assert f'value="{order.pk}"' in client.get(f"/customers/{customer.pk}/cases/new/?type=as").content.decode()
    base = {"case_type": "as", "topic": "Exchange", "channel": "counter", "priority": "normal", "unit": customer.home_unit_id}
    refused = client.post(f"/customers/{customer.pk}/cases/new/", {**base, "order": other.pk})
    assert refused.status_code == 200 and Case.objects.count() == 0
    client.post(f"/customers/{customer.pk}/cases/new/", {**base, "order": order.pk})
    assert Case.objects.get().order_id == order.pk
