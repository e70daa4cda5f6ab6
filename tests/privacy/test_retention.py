"""Retention: who is due, the dry run changes nothing, the real run anonymises exactly those and prunes old logs."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from dangol.core.models import AuditEvent
from dangol.core.scheduler import PERIODIC_JOBS
from dangol.customers.models import Consent, Customer
from dangol.privacy import services as privacy
from dangol.privacy.retention import inactive_customers, run_retention, years_before


def aged(customer, years: float):
    Customer.objects.filter(pk=customer.pk).update(joined_at=timezone.now() - dt.timedelta(days=365 * years))
    return customer


@pytest.fixture
def population(make_customer, buy, system):
    now = timezone.now()
    people = {
        "idle": aged(make_customer(name="오래된고객"), 4),
        "bought_lately": aged(make_customer(name="최근구매"), 4),
        "new": make_customer(name="신규고객"),
        "asked": aged(make_customer(name="요청고객"), 4),
        "consented_lately": aged(make_customer(name="최근동의"), 4),
        "imported_flag": aged(make_customer(name="가져온동의"), 4),
        "old_buyer": aged(make_customer(name="예전구매"), 5),
    }
    buy(people["bought_lately"], at=now - dt.timedelta(days=400))
    buy(people["old_buyer"], at=now - dt.timedelta(days=365 * 4))
    privacy.open_request(actor=system, customer=people["asked"], kind="access")
    Consent.objects.create(customer=people["consented_lately"], channel="sms", purpose="marketing", granted=False,
                           at=now - dt.timedelta(days=30), source="web")
    Consent.objects.create(customer=people["imported_flag"], channel="sms", purpose="marketing", granted=True,
                           at=now - dt.timedelta(days=30), source="import")
    return people


def test_only_customers_without_activity_for_three_years_are_due(population):
    due = set(inactive_customers().values_list("name", flat=True))
    assert due == {"오래된고객", "가져온동의", "예전구매"}


def test_the_period_is_a_setting(population, settings):
    settings.DANGOL_RETENTION_CUSTOMER_YEARS = 5
    assert set(inactive_customers().values_list("name", flat=True)) == set()
    settings.DANGOL_RETENTION_CUSTOMER_YEARS = 1
    assert "최근구매" in set(inactive_customers().values_list("name", flat=True))


def test_the_dry_run_reports_and_changes_nothing_the_real_run_anonymises_exactly_those(population):
    old = AuditEvent.objects.create(action="customer.view_contacts", object_type="customers.customer", object_id="1")
    AuditEvent.objects.filter(pk=old.pk).update(at=timezone.now() - dt.timedelta(days=365 * 2 + 30))
    recent = AuditEvent.objects.create(action="customer.view_contacts", object_type="customers.customer", object_id="2")
    AuditEvent.objects.filter(pk=recent.pk).update(at=timezone.now() - dt.timedelta(days=365 + 200))
    names_before = dict(Customer.objects.values_list("pk", "name"))
    events_before = AuditEvent.objects.count()

    out = io.StringIO()
    call_command("privacy", "retention", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "3 would be anonymised" in text and "bakery: 3" in text
    assert "1 would be deleted" in text
    assert text.strip().splitlines()[-1] == "customers: 3, access_log_events: 1, import_errors: 0"
    assert "오래된고객" not in text  # the report names ids and units, never people
    assert dict(Customer.objects.values_list("pk", "name")) == names_before
    assert AuditEvent.objects.count() == events_before

    report = run_retention(dry_run=False)
    assert report.customers == 3
    names_after = dict(Customer.objects.values_list("pk", "name"))
    erased = {pk for pk, name in names_after.items() if name.startswith("삭제된 고객")}
    assert erased == {population[k].pk for k in ("idle", "imported_flag", "old_buyer")}
    assert not AuditEvent.objects.filter(pk=old.pk).exists() and AuditEvent.objects.filter(pk=recent.pk).exists()
    assert AuditEvent.objects.filter(action="privacy.retention_erase").count() == 3
    # idempotent: a second run finds nothing
    assert run_retention(dry_run=False).customers == 0


def test_access_logs_are_kept_at_least_two_years_whatever_the_setting(db, settings):
    settings.DANGOL_RETENTION_ACCESS_LOG_YEARS = 1
    event = AuditEvent.objects.create(action="x", object_type="customers.customer", object_id="1")
    AuditEvent.objects.filter(pk=event.pk).update(at=timezone.now() - dt.timedelta(days=365 + 100))
    run_retention(dry_run=False)
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_the_job_is_scheduled_daily_and_its_task_runs(db):
    from django.utils.module_loading import import_string

    job = next(j for j in PERIODIC_JOBS if j.name == "privacy-retention")
    assert job.every == dt.timedelta(days=1)
    task = import_string(job.task_path)
    assert task.call() == "customers: 0, access_log_events: 0, import_errors: 0"


def test_years_before_handles_the_leap_day():
    assert years_before(dt.datetime(2028, 2, 29, tzinfo=dt.timezone.utc), 3) == dt.datetime(2025, 2, 28, tzinfo=dt.timezone.utc)
