"""Events with check-in: invitations to a segment with a holdout through the messaging engine, RSVP by signed link
with a waiting list (and the last seat to one answer only, under concurrency on PostgreSQL), check-in at the door
(invited, known walk-ins, guests by name), the timeline, the report against the holdout, erasure and merges, and the
pages."""
from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone, translation

from dangol.campaigns.models import Segment, SegmentKind, SegmentMember
from dangol.core.audit import Actor
from dangol.customers.models import Interaction
from dangol.gatherings import services
from dangol.gatherings.models import Attendance, Event, Invitation, InvitationStatus
from dangol.messaging.models import Message
from dangol.sales.services import LineInput, record_order

from tests.helpers import login


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def guests(make_customer):
    return [make_customer("seoul-hotel", name=f"손님{i}", phone=f"010-7000-{1000 + i}") for i in range(10)]


@pytest.fixture
def segment(units, guests):
    segment = Segment.objects.create(name="VIP", unit=units["seoul-hotel"], kind=SegmentKind.STATIC)
    SegmentMember.objects.bulk_create([SegmentMember(segment=segment, customer=g) for g in guests])
    return segment


@pytest.fixture
def event(mina, units, segment):
    start = timezone.now() + dt.timedelta(days=3)
    return services.create_event(actor=Actor(user=mina), unit=units["seoul-hotel"], title="Wine tasting", kind="tasting",
                                 starts_at=start, ends_at=start + dt.timedelta(hours=3), place="Lobby lounge", capacity=2,
                                 segment=segment, holdout_pct=20)


def link(token: str) -> str:
    return f"http://testserver/e/{token}/"


def test_only_managers_create_events_and_bad_input_says_why(bora, mina, units):
    start = timezone.now() + dt.timedelta(days=1)
    with pytest.raises(PermissionDenied):
        services.create_event(actor=Actor(user=bora), unit=units["bakery"], title="x", kind="tasting", starts_at=start,
                              ends_at=start + dt.timedelta(hours=1), place="here", capacity=10)
    with pytest.raises(ValidationError) as caught:
        services.create_event(actor=Actor(user=mina), unit=units["seoul-hotel"], title=" ", kind="rave", starts_at=start,
                              ends_at=start, place="", capacity=0)
    assert set(caught.value.message_dict) == {"title", "kind", "ends_at", "place", "capacity"}
    assert not Event.objects.exists()


def test_invitations_keep_a_holdout_and_go_through_the_messaging_engine(event, guests, mina):
    result = services.invite(actor=Actor(user=mina), event=event, link_for=link)
    invitations = Invitation.objects.filter(event=event)
    held = invitations.filter(status=InvitationStatus.HOLDOUT).count()
    assert result["invited"] + result["holdout"] == 10 == invitations.count() and held == result["holdout"]
    messages = Message.objects.filter(source=f"event:{event.pk}")
    assert messages.count() == result["invited"]  # blocked without marketing consent, but decided by the engine
    assert "http://testserver/e/" in messages.first().body
    again = services.invite(actor=Actor(user=mina), event=event, link_for=link)
    assert again["invited"] == again["holdout"] == 0 and Message.objects.filter(source=f"event:{event.pk}").count() == messages.count()


def test_rsvp_fills_the_seats_then_the_waiting_list_and_a_refusal_frees_a_seat(event, mina):
    services.invite(actor=Actor(user=mina), event=event, link_for=link)
    invited = list(Invitation.objects.filter(event=event, status=InvitationStatus.INVITED).order_by("id"))
    first, second, third, fourth = invited[:4]
    for invitation in (first, second, third, fourth):
        services.rsvp(invitation=services.read_rsvp_token(services.rsvp_token(invitation)), going=True)
    statuses = lambda: [Invitation.objects.get(pk=i.pk).status for i in (first, second, third, fourth)]  # noqa: E731
    assert statuses() == ["going", "going", "waitlist", "waitlist"]
    services.rsvp(invitation=second, going=True)  # asked again: nothing changes
    result = services.rsvp(invitation=second, going=False)
    assert result.promoted.pk == third.pk and statuses() == ["going", "declined", "going", "waitlist"]
    assert Message.objects.filter(source=f"event:{event.pk}", occurrence="seat", customer_id=third.customer_id).exists()
    assert services.read_rsvp_token("forged") is None


def test_a_held_out_customer_or_a_started_event_takes_no_answer(event, mina):
    services.invite(actor=Actor(user=mina), event=event, link_for=link)
    held = Invitation.objects.filter(event=event, status=InvitationStatus.HOLDOUT).first()
    if held is not None:
        with pytest.raises(ValidationError):
            services.rsvp(invitation=held, going=True)
    invited = Invitation.objects.filter(event=event, status=InvitationStatus.INVITED).first()
    with pytest.raises(ValidationError):
        services.rsvp(invitation=invited, going=True, now=event.starts_at + dt.timedelta(minutes=1))


def test_the_door_finds_guests_by_last_four_digits_and_checks_them_in_once(event, guests, mina, make_customer):
    services.invite(actor=Actor(user=mina), event=event, link_for=link)
    invitation = Invitation.objects.filter(event=event, status=InvitationStatus.INVITED).first()
    services.rsvp(invitation=invitation, going=True)
    during = event.starts_at + dt.timedelta(minutes=30)
    phone_digits = str(1000 + guests.index(next(g for g in guests if g.pk == invitation.customer_id)))
    [found] = services.find_guests(user=mina, event=event, query=phone_digits)
    assert found.invitation.pk == invitation.pk and not found.checked_in
    attendance = services.check_in(actor=Actor(user=mina), event=event, customer=found.customer, now=during)
    assert not attendance.walk_in and attendance.invitation_id == invitation.pk
    assert Interaction.objects.filter(customer=found.customer, kind="visit", summary="Attended Wine tasting").exists()
    with pytest.raises(ValidationError):
        services.check_in(actor=Actor(user=mina), event=event, customer=found.customer, now=during)
    stranger = make_customer("seoul-hotel", name="워크인")
    assert services.check_in(actor=Actor(user=mina), event=event, customer=stranger, now=during).walk_in
    guest = services.check_in(actor=Actor(user=mina), event=event, guest_name="  Park  Guest ", now=during)
    assert guest.walk_in and guest.customer is None and guest.guest_name == "Park Guest"
    with pytest.raises(ValidationError):
        services.check_in(actor=Actor(user=mina), event=event, now=during)  # neither a customer nor a name
    with pytest.raises(ValidationError):
        services.check_in(actor=Actor(user=mina), event=event, guest_name="Early", now=event.starts_at - dt.timedelta(days=2))
    with pytest.raises(ValidationError):
        services.find_guests(user=mina, event=event, query="12")


def test_the_report_compares_attendees_with_invited_absentees_and_the_holdout(event, guests, mina, products):
    Event.objects.filter(pk=event.pk).update(holdout_pct=50)
    event.refresh_from_db()
    services.invite(actor=Actor(user=mina), event=event, link_for=link)
    invited = list(Invitation.objects.filter(event=event, status=InvitationStatus.INVITED))
    held = list(Invitation.objects.filter(event=event, status=InvitationStatus.HOLDOUT))
    assert invited and held
    during = event.starts_at + dt.timedelta(minutes=10)
    attendee = invited[0].customer
    services.check_in(actor=Actor(user=mina), event=event, customer=attendee, now=during)
    record_order(actor=Actor.system("test"), unit=products["deluxe"].unit, customer=attendee,
                 lines=[LineInput(product_id=products["deluxe"].pk, quantity=1)], at=timezone.now())
    Event.objects.filter(pk=event.pk).update(starts_at=timezone.now() - dt.timedelta(hours=1),
                                             ends_at=timezone.now() + dt.timedelta(hours=1))
    event.refresh_from_db()
    found = services.report(event)
    groups = {g.key: g for g in found["groups"]}
    assert (groups["attended"].customers, groups["attended"].buyers, groups["attended"].revenue) == (1, 1, 250_000)
    assert groups["invited_absent"].customers == len(invited) - 1 and groups["invited_absent"].buyers == 0
    assert groups["holdout"].customers == len(held)


def test_erasure_and_merges(event, guests, mina, alice, make_customer):
    from dangol.core import events
    from dangol.ingest.merge import merge_customers, unmerge

    during = event.starts_at + dt.timedelta(minutes=10)
    services.check_in(actor=Actor(user=mina), event=event, guest_name="Guest Kim", now=during)
    duplicate = make_customer("seoul-hotel", name=guests[0].name)
    services.check_in(actor=Actor(user=mina), event=event, customer=duplicate, now=during)
    merge = merge_customers(actor=Actor(user=alice), survivor=guests[0], merged=duplicate)
    assert Attendance.objects.filter(customer=guests[0]).count() == 1
    unmerge(actor=Actor(user=alice), merge=merge)
    assert Attendance.objects.filter(customer=duplicate).count() == 1
    events.emit("customer_erased", customer_id=duplicate.pk)
    assert Attendance.objects.filter(customer=duplicate).exists()


postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks and real concurrent connections")


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_last_seat_goes_to_one_of_many_concurrent_answers(mina, units, make_customer):
    people = [make_customer("seoul-hotel", name=f"동시{i}") for i in range(20)]
    start = timezone.now() + dt.timedelta(days=1)
    event = services.create_event(actor=Actor(user=mina), unit=units["seoul-hotel"], title="VIP", kind="vip",
                                  starts_at=start, ends_at=start + dt.timedelta(hours=2), place="Top floor", capacity=5)
    invitations = Invitation.objects.bulk_create([Invitation(event=event, customer=p) for p in people])
    barrier = threading.Barrier(len(invitations))
    errors = []

    def answer(invitation):
        try:
            barrier.wait(30)
            services.rsvp(invitation=invitation, going=True)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=answer, args=(i,)) for i in invitations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert Invitation.objects.filter(event=event, status=InvitationStatus.GOING).count() == 5
    assert Invitation.objects.filter(event=event, status=InvitationStatus.WAITLIST).count() == 15


# --- pages ---------------------------------------------------------------------------------------------------------------

def test_the_pages_invite_answer_and_check_in(client, event, guests, mina, bora):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(client, mina)
    assert client.get("/events/").status_code == 200
    assert client.post(f"/events/{event.pk}/invite/").status_code == 302
    invitation = Invitation.objects.filter(event=event, status=InvitationStatus.INVITED).first()
    client.logout()
    url = f"/e/{services.rsvp_token(invitation)}/"
    assert "Will you come?" in client.get(url).content.decode()
    assert "You are coming" in client.post(url, {"answer": "yes"}).content.decode()
    assert client.get("/e/forged-token/").status_code == 404
    login(client, mina)
    Event.objects.filter(pk=event.pk).update(starts_at=timezone.now() - dt.timedelta(minutes=5))
    page = client.get(f"/events/{event.pk}/", {"q": "1000"}).content.decode()
    assert 'data-testid="guest"' in page
    customer_id = re.search(r'name="customer" value="(\d+)"', page).group(1)
    assert client.post(f"/events/{event.pk}/check-in/", {"customer": customer_id}).status_code == 302
    assert Attendance.objects.filter(event=event).count() == 1
    assert client.get(f"/events/{event.pk}/report/").status_code == 200
    login(client, bora)
    assert client.get(f"/events/{event.pk}/").status_code == 404  # another unit's event


def test_event_figures_on_the_dashboard(client, event, guests, mina, alice, settings):
    settings.DANGOL_DASHBOARD_CACHE_SECONDS = 0
    services.invite(actor=Actor(user=mina), event=event, link_for=link)
    invitation = Invitation.objects.filter(event=event, status=InvitationStatus.INVITED).first()
    services.rsvp(invitation=invitation, going=True)
    services.check_in(actor=Actor(user=mina), event=event, guest_name="Guest", now=event.starts_at)
    [figures] = services.event_kpis(unit_ids=None, start=event.starts_at - dt.timedelta(days=1),
                                    end=event.starts_at + dt.timedelta(days=1))
    assert (figures["going"], figures["attended"], figures["walk_ins"]) == (1, 1, 1)
    Event.objects.filter(pk=event.pk).update(starts_at=timezone.now() - dt.timedelta(days=1),
                                             ends_at=timezone.now() - dt.timedelta(days=1) + dt.timedelta(hours=2))
    login(client, alice)
    html = client.get("/analytics/membership/", {"period": "30d"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-testid="event-kpis"' in html and "Wine tasting" in html


def test_after_the_event_the_attendees_get_the_survey_once_and_the_report_shows_the_scores(event, guests, mina, make_customer):
    from dangol.service import services as service
    from dangol.service.models import Survey, SurveyInvitation

    during = event.starts_at + dt.timedelta(minutes=10)
    for person in guests[:3]:
        services.check_in(actor=Actor(user=mina), event=event, customer=person, now=during)
    services.check_in(actor=Actor(user=mina), event=event, guest_name="No record", now=during)
    after = event.ends_at + dt.timedelta(hours=1)
    with pytest.raises(ValidationError) as caught:
        services.survey_attendees(actor=Actor(user=mina), event=event, now=after)
    assert "survey" in caught.value.message_dict
    with pytest.raises(ValidationError):
        services.survey_attendees(actor=Actor(user=mina), event=event, now=during)
    Survey.objects.create(name="How was the tasting?", score_kind="csat", trigger="manual", unit=event.unit)
    assert services.survey_attendees(actor=Actor(user=mina), event=event, now=after)["invited"] == 3
    services.survey_attendees(actor=Actor(user=mina), event=event, now=after)
    invitations = SurveyInvitation.objects.filter(about=f"event:{event.pk}")
    assert invitations.count() == 3
    service.answer_survey(invitation=invitations.first(), score=5)
    assert services.report(event)["survey"] == {"sent": 3, "answered": 1, "average": 5.0}
