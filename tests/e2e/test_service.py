"""Service in real headless Chromium at 360 px — the demo of issue 9: a bakery clerk logs a complaint from the
customer's page in three taps; the case runs overdue and the periodic job escalates it to the manager, who resolves
it with a goodwill coupon and closes it; the survey goes out, the customer answers on the public page with a low
score, which opens a follow-up case; the manager sees it all in the service KPIs. And the public inquiry form."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import expect

from dangol.core.models import Role
from dangol.core.services import create_staff_user
from dangol.loyalty.models import Coupon, CouponKind, CouponTemplate
from dangol.messaging.models import Message
from dangol.service import services
from dangol.service.models import Case, CaseStatus, Survey, SurveyInvitation

from tests.e2e.support import assert_no_horizontal_scroll, login, open_customer
from tests.helpers import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def jun(units):
    return create_staff_user(username="jun", password=PASSWORD, role=Role.MANAGER, units=[units["bakery"]])


@pytest.fixture
def survey(units):
    # Transactional tests flush the rows the migrations wrote: make sure the after-case survey is there.
    return Survey.objects.get_or_create(trigger="after_case", unit=None, defaults={
        "name": "After a case (CSAT)", "score_kind": "csat", "is_active": True})[0]


@pytest.fixture
def sorry_coupon(units):
    return CouponTemplate.objects.create(name="Sorry cake", kind=CouponKind.GIFT, value=0, valid_days=30)


def test_a_complaint_from_the_counter_to_the_follow_up_of_an_unhappy_survey(new_page, live_server, bora, jun, make_customer,
                                                                            survey, sorry_coupon, screenshot):
    guest = make_customer("bakery", name="김하늘", phone="010-3131-4242")
    clerk = new_page()
    login(clerk, live_server, "bora")
    open_customer(clerk, live_server, guest)
    expect(clerk.get_by_test_id("service-panel")).to_be_visible()
    assert_no_horizontal_scroll(clerk)

    # What the clerk learns is kept for the whole team, with its source and date.
    clerk.get_by_test_id("trait-add").locator("summary").tap()
    trait_form = clerk.get_by_test_id("trait-form")
    trait_form.locator("select[name=category]").select_option("allergy")
    trait_form.locator("input[name=value]").fill("no nuts")
    trait_form.get_by_test_id("trait-save").tap()
    expect(clerk.get_by_test_id("trait")).to_contain_text("no nuts")
    expect(clerk.get_by_test_id("trait")).to_contain_text("Said at the counter")
    assert_no_horizontal_scroll(clerk)
    screenshot(clerk, "service-panel-360px")

    # Three taps: the type, a topic, save.
    clerk.get_by_test_id("log-complaint").tap()
    clerk.get_by_test_id("topics").get_by_text("Waiting time").tap()
    assert_no_horizontal_scroll(clerk)
    screenshot(clerk, "service-log-case-360px")
    clerk.get_by_test_id("case-save").tap()
    expect(clerk.get_by_test_id("case-status")).to_have_text("New")
    expect(clerk.get_by_test_id("case-subject")).to_have_text("Waiting time")
    case = Case.objects.get()
    assert case.channel == "counter" and case.unit.code == "bakery" and case.opened_by == bora
    assert Message.objects.filter(source=f"service:case:{case.pk}", occurrence="opened").exists()
    assert_no_horizontal_scroll(clerk)

    # A note for colleagues; then the case is left too long: the periodic job escalates it to the manager.
    clerk.get_by_test_id("entry-form").locator("textarea").fill("Customer waited 20 minutes at the till.")
    clerk.get_by_test_id("entry-save").tap()
    expect(clerk.get_by_test_id("entry-note")).to_contain_text("20 minutes")
    assert services.escalate_overdue(now=case.due_at + dt.timedelta(minutes=5)) == 1
    clerk.reload()
    expect(clerk.get_by_test_id("case-escalated")).to_contain_text("jun")

    # The manager finds it in his queue, gives a goodwill coupon, resolves and closes.
    manager = new_page()
    login(manager, live_server, "jun")
    manager.get_by_test_id("nav-cases").tap()
    manager.get_by_test_id("queue").get_by_text("Waiting time").tap()
    expect(manager.get_by_test_id("case-subject")).to_have_text("Waiting time")
    manager.get_by_test_id("goodwill-open").locator("summary").tap()
    form = manager.get_by_test_id("goodwill-form")
    form.locator("select[name=template]").select_option(str(sorry_coupon.pk))
    form.locator("input[name=reason]").fill("Long wait at the till")
    form.get_by_test_id("goodwill-give").tap()
    expect(manager.get_by_test_id("goodwill-list")).to_contain_text("Sorry cake")
    assert Coupon.objects.filter(customer=guest, source_ref=f"case:{case.pk}").count() == 1
    manager.get_by_test_id("to-in_progress").tap()
    expect(manager.get_by_test_id("case-status")).to_have_text("In progress")
    manager.get_by_test_id("resolution").fill("Apologised; cake coupon given")
    manager.get_by_test_id("to-resolved").tap()
    expect(manager.get_by_test_id("case-status")).to_have_text("Resolved")
    assert_no_horizontal_scroll(manager)
    screenshot(manager, "service-case-resolved-360px")
    manager.get_by_test_id("to-closed").tap()
    expect(manager.get_by_test_id("case-status")).to_have_text("Closed")

    # The survey went out with a signed link; the customer answers on a phone, unhappily.
    invitation = SurveyInvitation.objects.get(case=case)
    message = Message.objects.get(pk=invitation.message_id)
    path = re.search(r"/s/[^\s]+/", message.body).group(0)
    customer_phone = new_page()
    customer_phone.goto(f"{live_server.url}{path}")
    expect(customer_phone.get_by_test_id("survey")).to_be_visible()
    assert_no_horizontal_scroll(customer_phone)
    screenshot(customer_phone, "service-survey-360px")
    customer_phone.get_by_test_id("score-2").tap()
    customer_phone.get_by_test_id("comment").fill("The coupon is nice but the wait was awful.")
    customer_phone.get_by_test_id("survey-send").tap()
    expect(customer_phone.get_by_test_id("survey-thanks")).to_be_visible()
    customer_phone.goto(f"{live_server.url}{path}")
    expect(customer_phone.get_by_test_id("survey-already")).to_be_visible()  # once per invitation

    follow_up = Case.objects.exclude(pk=case.pk).get()
    assert follow_up.status == CaseStatus.NEW and follow_up.priority == "high" and follow_up.follow_up_of is not None

    # The manager's KPIs: the follow-up is open, CSAT 2, the comment verbatim.
    manager.get_by_test_id("nav-service-kpis").tap()
    expect(manager.get_by_test_id("kpi-open")).to_have_text("1")
    expect(manager.get_by_test_id("kpi-csat")).to_contain_text("2.00")
    expect(manager.get_by_test_id("verbatim")).to_contain_text("the wait was awful")
    expect(manager.get_by_test_id("kpi-resolution")).not_to_have_text("—")
    assert_no_horizontal_scroll(manager)
    screenshot(manager, "service-kpis-360px")
    # The clerk has no KPIs link.
    clerk.goto(f"{live_server.url}/")
    expect(clerk.get_by_test_id("nav-service-kpis")).to_have_count(0)


def test_the_public_inquiry_form_at_phone_width(page, live_server, units, make_customer, settings, screenshot):
    settings.DANGOL_SERVICE_FORM_MIN_SECONDS = 0  # a test types faster than any person
    cache.clear()
    known = make_customer("seoul-hotel", name="박서준", phone="010-9090-1212")
    page.goto(f"{live_server.url}/help/?unit=seoul-hotel")
    expect(page.get_by_test_id("request-form")).to_be_visible()
    expect(page.locator("input[name=website]")).not_to_be_in_viewport()  # the honeypot stays out of sight
    assert_no_horizontal_scroll(page)
    form = page.get_by_test_id("request-form")
    form.get_by_text("A repair or after-sales request (A/S)").tap()
    form.locator("input[name=name]").fill("박서준")
    form.locator("input[name=phone]").fill("010 9090 1212")
    form.locator("textarea[name=message]").fill("The room safe does not open.")
    screenshot(page, "service-public-form-360px")
    form.get_by_test_id("request-send").tap()
    expect(page.get_by_test_id("request-sent")).to_be_visible()
    case = Case.objects.get()
    expect(page.get_by_test_id("request-number")).to_have_text(str(case.pk))
    assert case.customer_id == known.pk and case.case_type == "as" and case.unit.code == "seoul-hotel"
    assert case.due_at > timezone.now()

    # Bad input: errors next to the fields, nothing written.
    page.goto(f"{live_server.url}/help/")
    form = page.get_by_test_id("request-form")
    form.locator("input[name=name]").fill("Test")
    form.locator("input[name=phone]").fill("12")
    form.get_by_test_id("request-send").tap()
    expect(page.get_by_test_id("error-phone")).to_be_visible()
    expect(page.get_by_test_id("error-message")).to_be_visible()
    assert Case.objects.count() == 1
