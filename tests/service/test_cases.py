"""Cases: opening, the workflow (valid and invalid moves), SLA due times and the waiting clock, escalation by the
periodic job with frozen clocks, assignment, notes and replies, unit permissions, and bad input that writes nothing."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from freezegun import freeze_time

from dangol.core.audit import Actor
from dangol.customers.models import Interaction, InteractionKind
from dangol.messaging.models import Message
from dangol.service import selectors, services, tasks
from dangol.service.models import Case, CaseEntry, CaseStatus, EntryKind, SlaRule

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.timezone.utc)  # a Monday, 10:00 in Seoul


def open_at(bora, customer, units, at=T0, **kwargs):
    values = dict(case_type="complaint", channel="counter", subject="Stale bread", priority="normal")
    values.update(kwargs)
    return services.open_case(actor=Actor(user=bora), customer=customer, unit=units["bakery"], now=at, **values)


def test_it_opens_a_case_with_its_due_time_timeline_entry_membership_and_confirmation(bora, customer, units):
    case = open_at(bora, customer, units)

    assert case.status == CaseStatus.NEW
    assert case.due_at == T0 + dt.timedelta(hours=24)  # complaint × normal
    entry = Interaction.objects.get(customer=customer, kind=InteractionKind.CASE)
    assert entry.ref_type == "service.case" and entry.ref_id == case.pk and "Stale bread" in entry.summary
    message = Message.objects.get(source=f"service:case:{case.pk}", occurrence="opened")
    # Customers get their messages in Korean (the language of the business), whatever the clerk's screen shows.
    assert message.kind == "info" and message.channel == "sms" and f"(접수번호 {case.pk})" in message.body


def test_the_sla_rule_of_type_and_priority_sets_the_due_time_and_an_edited_rule_wins(bora, customer, units):
    assert open_at(bora, customer, units, case_type="as", priority="urgent").due_at == T0 + dt.timedelta(hours=24)
    SlaRule.objects.filter(case_type="inquiry", priority="high").update(resolve_hours=2)
    assert open_at(bora, customer, units, case_type="inquiry", priority="high").due_at == T0 + dt.timedelta(hours=2)
    SlaRule.objects.all().delete()  # the defaults in code still apply
    assert open_at(bora, customer, units, case_type="request", priority="low").due_at == T0 + dt.timedelta(hours=96)


def test_the_whole_workflow_and_a_reopen(bora, customer, units):
    case = open_at(bora, customer, units)
    actor = Actor(user=bora)
    for status, hours in (("in_progress", 1), ("waiting", 2), ("in_progress", 5), ("resolved", 6), ("closed", 7)):
        case = services.change_status(actor=actor, case=case, to_status=status, now=T0 + dt.timedelta(hours=hours),
                                      resolution="Replaced the bread" if status == "resolved" else "")
    assert case.status == CaseStatus.CLOSED
    assert case.first_response_at == T0 + dt.timedelta(hours=1)
    assert case.due_at == T0 + dt.timedelta(hours=24 + 3)  # three hours waiting for the customer do not count
    assert case.resolution == "Replaced the bread"
    assert case.closed_at == T0 + dt.timedelta(hours=7)

    case = services.reopen(actor=actor, case=case, note="Still stale", now=T0 + dt.timedelta(days=2))
    assert case.status == CaseStatus.IN_PROGRESS and case.reopen_count == 1
    assert case.resolved_at is None and case.closed_at is None
    assert case.due_at == T0 + dt.timedelta(days=2, hours=24)  # a fresh SLA window
    statuses = list(case.entries.filter(kind=EntryKind.STATUS).values_list("from_status", "to_status"))
    assert statuses[-1] == ("closed", "in_progress")


@pytest.mark.parametrize("path, target", [
    ([], "closed"),                                   # new → closed skips resolving
    (["in_progress"], "new"),                         # nothing goes back to new
    (["resolved", "closed"], "waiting"),              # a closed case only reopens
    (["resolved"], "resolved"),                       # no move to the same status
    ([], "archived"),                                 # not a status
])
def test_an_invalid_move_is_refused_with_the_possible_moves_and_writes_nothing(bora, customer, units, path, target, row_counts):
    case = open_at(bora, customer, units)
    for status in path:
        case = services.change_status(actor=Actor(user=bora), case=case, to_status=status)
    before = row_counts()

    with pytest.raises(ValidationError) as error:
        services.change_status(actor=Actor(user=bora), case=case, to_status=target)

    assert "status" in error.value.message_dict
    assert row_counts() == before
    assert Case.objects.get(pk=case.pk).status == case.status
    if target != "archived":
        assert "it can become" in error.value.message_dict["status"][0]


def test_bad_input_is_refused_field_by_field_and_nothing_is_written(bora, customer, units, row_counts, make_customer):
    before = row_counts()
    with pytest.raises(ValidationError) as error:
        services.open_case(actor=Actor(user=bora), customer=customer, unit=units["bakery"], case_type="praise",
                           channel="pigeon", priority="whenever", subject="   ", description="x" * 5001)
    assert set(error.value.message_dict) == {"case_type", "channel", "priority", "description"}
    with pytest.raises(ValidationError) as error:
        services.open_case(actor=Actor(user=bora), customer=customer, unit=units["bakery"], case_type="complaint",
                           channel="counter", subject="   ", description="  ")
    assert error.value.message_dict == {"subject": ["Say in a few words what the case is about."]}
    assert row_counts() == before


def test_staff_cannot_open_or_work_cases_of_another_unit(bora, mina, customer, units, row_counts):
    before = row_counts()
    with pytest.raises(PermissionDenied):
        services.open_case(actor=Actor(user=bora), customer=customer, unit=units["seoul-hotel"], case_type="complaint",
                           channel="counter", subject="Noise")
    assert row_counts() == before
    case = open_at(bora, customer, units)
    with pytest.raises(PermissionDenied):
        services.change_status(actor=Actor(user=mina), case=case, to_status="in_progress")
    with pytest.raises(PermissionDenied):
        services.add_entry(actor=Actor(user=mina), case=case, kind="note", body="Hello")
    assert selectors.cases_for(mina).filter(pk=case.pk).count() == 0
    assert selectors.cases_for(bora).filter(pk=case.pk).count() == 1


def test_assignment_only_to_colleagues_of_the_unit(bora, mina, jun, customer, units):
    case = open_at(bora, customer, units)
    with pytest.raises(ValidationError) as error:
        services.assign(actor=Actor(user=bora), case=case, assignee=mina)
    assert "assignee" in error.value.message_dict
    case = services.assign(actor=Actor(user=bora), case=case, assignee=jun)
    assert case.assignee == jun
    assert list(selectors.my_queue(jun)) == [case]
    case = services.assign(actor=Actor(user=jun), case=case, assignee=None)
    assert case.assignee is None and list(selectors.my_queue(bora)) == [case]  # back in the unit's queue


def test_notes_stay_internal_and_replies_go_to_the_customer(bora, customer, units):
    case = open_at(bora, customer, units)
    note = services.add_entry(actor=Actor(user=bora), case=case, kind="note", body="Customer is a regular; be generous.")
    reply = services.add_entry(actor=Actor(user=bora), case=case, kind="reply", body="We are sorry: a fresh baguette waits for you.",
                               now=T0 + dt.timedelta(hours=1))
    assert not note.visible_to_customer and note.message_id is None
    message = Message.objects.get(pk=reply.message_id)
    assert message.source == f"service:case:{case.pk}" and "fresh baguette" in message.body
    assert Case.objects.get(pk=case.pk).first_response_at == T0 + dt.timedelta(hours=1)
    with pytest.raises(ValidationError) as error:
        services.add_entry(actor=Actor(user=bora), case=case, kind="reply", body="   ")
    assert error.value.message_dict == {"body": ["Write something first."]}
    with pytest.raises(ValidationError):
        services.add_entry(actor=Actor(user=bora), case=case, kind="status", body="hi")


def test_the_overdue_list_leaves_out_waiting_and_finished_cases(bora, customer, units):
    late = open_at(bora, customer, units, subject="late")
    waiting = open_at(bora, customer, units, subject="waiting")
    services.change_status(actor=Actor(user=bora), case=waiting, to_status="waiting", now=T0 + dt.timedelta(hours=1))
    done = open_at(bora, customer, units, subject="done")
    services.change_status(actor=Actor(user=bora), case=done, to_status="resolved", now=T0 + dt.timedelta(hours=1))
    open_at(bora, customer, units, subject="fresh", at=T0 + dt.timedelta(hours=20))

    overdue = selectors.overdue_cases(bora, now=T0 + dt.timedelta(hours=30))
    assert [c.subject for c in overdue] == [late.subject]


def test_the_periodic_job_escalates_an_overdue_case_to_the_units_manager_once(bora, jun, customer, units):
    case = open_at(bora, customer, units)
    with freeze_time(T0 + dt.timedelta(hours=23)):
        assert services.escalate_overdue() == 0
    with freeze_time(T0 + dt.timedelta(hours=25)):
        assert tasks.escalate_overdue_cases.call() == "escalated: 1, closed: 0"
        assert services.escalate_overdue() == 0  # idempotent: claimed once
    case.refresh_from_db()
    assert case.escalated_to == jun and case.escalated_at == T0 + dt.timedelta(hours=25)
    assert case.entries.filter(kind=EntryKind.ESCALATE).count() == 1
    assert "Overdue by 1 h" in case.entries.get(kind=EntryKind.ESCALATE).body
    assert case in selectors.my_queue(jun)


def test_escalation_is_registered_as_a_periodic_job():
    from dangol.core.scheduler import PERIODIC_JOBS

    job = next(j for j in PERIODIC_JOBS if j.name == "service-escalate-overdue")
    assert job.task_path == "dangol.service.tasks.escalate_overdue_cases" and job.every == dt.timedelta(minutes=5)


def test_staff_escalate_by_hand_once(bora, jun, customer, units):
    case = open_at(bora, customer, units)
    case = services.escalate(actor=Actor(user=bora), case=case)
    assert case.escalated_to == jun
    with pytest.raises(ValidationError):
        services.escalate(actor=Actor(user=bora), case=case)


def test_resolved_cases_close_by_themselves_after_a_week(bora, customer, units, settings):
    settings.DANGOL_SERVICE_AUTOCLOSE_DAYS = 7
    case = open_at(bora, customer, units)
    services.change_status(actor=Actor(user=bora), case=case, to_status="resolved", now=T0)
    assert services.close_resolved(now=T0 + dt.timedelta(days=6)) == 0
    assert services.close_resolved(now=T0 + dt.timedelta(days=8)) == 1
    assert Case.objects.get(pk=case.pk).status == CaseStatus.CLOSED


def test_priority_change_moves_the_due_time(bora, customer, units):
    case = open_at(bora, customer, units)
    case = services.set_priority(actor=Actor(user=bora), case=case, priority="urgent")
    assert case.due_at == T0 + dt.timedelta(hours=4)
    with pytest.raises(ValidationError):
        services.set_priority(actor=Actor(user=bora), case=case, priority="asap")


def test_a_merged_or_erased_customer_gets_no_new_case(bora, customer, units):
    customer.erased_at = timezone.now()
    customer.save(update_fields=["erased_at"])
    with pytest.raises(ValidationError) as error:
        open_at(bora, customer, units)
    assert "customer" in error.value.message_dict
    assert CaseEntry.objects.count() == 0
