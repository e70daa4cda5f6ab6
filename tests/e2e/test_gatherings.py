"""The door of an event in headless Chromium at 360 px: a guest answers the invitation's link, the manager finds them
by the last four digits of their phone and checks them in, a walk-in guest is recorded by name, the report follows."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dangol.core.audit import Actor
from dangol.gatherings import services
from dangol.gatherings.models import Attendance, Invitation

from tests.e2e.support import assert_no_horizontal_scroll, login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_guest_answers_and_is_checked_in_at_the_door(page, new_page, live_server, mina, units, make_customer, screenshot):
    guest = make_customer("seoul-hotel", name="한손님", phone="010-3141-5926")
    start = timezone.now() - dt.timedelta(minutes=30)
    event = services.create_event(actor=Actor(user=mina), unit=units["seoul-hotel"], title="Wine tasting", kind="tasting",
                                  starts_at=timezone.now() + dt.timedelta(days=1), ends_at=timezone.now() + dt.timedelta(days=1, hours=2),
                                  place="Lobby lounge", capacity=20)
    invitation = Invitation.objects.create(event=event, customer=guest)

    phone = new_page()  # the guest's phone, no login
    phone.goto(f"{live_server.url}/e/{services.rsvp_token(invitation)}/")
    phone.get_by_test_id("rsvp-yes").tap()
    expect(phone.get_by_test_id("rsvp-status")).to_contain_text("You are coming")
    assert_no_horizontal_scroll(phone)

    type(event).objects.filter(pk=event.pk).update(starts_at=start, ends_at=start + dt.timedelta(hours=3))
    login(page, live_server, "mina")
    page.get_by_test_id("nav-events").tap()
    page.get_by_test_id(f"event-{event.pk}").tap()
    expect(page.get_by_test_id("seats")).to_contain_text("1 of 20 seats taken")
    page.get_by_test_id("door-query").fill("5926")
    page.get_by_test_id("door-find").tap()
    expect(page.get_by_test_id("guest")).to_contain_text("Going")
    assert_no_horizontal_scroll(page)
    screenshot(page, "event-door-at-360px")
    page.get_by_test_id("check-in").tap()
    expect(page.get_by_test_id("seats")).to_contain_text("1 checked in")

    page.locator("summary", has_text="Walk-in").tap()
    page.locator("#id_guest_name").fill("박방문")
    page.get_by_test_id("walk-in").tap()
    expect(page.get_by_test_id("seats")).to_contain_text("2 checked in")
    assert Attendance.objects.filter(event=event, walk_in=True, guest_name="박방문").exists()

    page.get_by_test_id("event-report").tap()
    expect(page.get_by_test_id("group-attended")).to_contain_text("1")
    assert_no_horizontal_scroll(page)
