"""Retention: personal data is destroyed once its retention period has passed (개인정보보호법 §21 ①).

The periods are settings (``DANGOL_RETENTION_*``), published in the privacy policy:

- customers with no activity — no purchase or refund, no visit, no points redeemed, no consent given or withdrawn
  by the customer — for ``DANGOL_RETENTION_CUSTOMER_YEARS`` (3) years are anonymised (``erasure``); their orders
  stay, without identity. (The one-year "dormant account" rule of the former §39-6 was repealed on 15 September 2023;
  the period is now the controller's own, stated in its policy.) Customers with an open data-subject request wait
  until it is answered.
- the access log (core's audit trail) is kept ``DANGOL_RETENTION_ACCESS_LOG_YEARS`` years, never fewer than two
  (개인정보의 안전성 확보조치 기준 §8 ①), then deleted.
- rejected import rows, which quote the file's raw values, are kept ``DANGOL_RETENTION_IMPORT_ERRORS_DAYS`` days.

``run_retention(dry_run=True)`` counts without writing; the scheduled job runs it for real once a day.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.utils import timezone

from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.customers.models import Consent, ConsentSource, Customer, Interaction, InteractionKind

from .erasure import CHUNK, erase_customers
from .models import OPEN_STATUSES, DataSubjectRequest


def years_before(now: dt.datetime, years: int) -> dt.datetime:
    """The same calendar day ``years`` earlier (29 February becomes the 28th)."""
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


def inactive_customers(*, now: dt.datetime | None = None, years: int | None = None) -> QuerySet[Customer]:
    """Live customers without any activity since the cutoff: set-based NOT EXISTS on indexed (customer, time) pairs."""
    from dangol.loyalty.models import LedgerEntry
    from dangol.sales.models import Order

    now = now or timezone.now()
    cutoff = years_before(now, settings.DANGOL_RETENTION_CUSTOMER_YEARS if years is None else years)
    customer = OuterRef("pk")
    return (
        Customer.objects.filter(erased_at__isnull=True, merged_into__isnull=True, joined_at__lt=cutoff)
        .exclude(Exists(Order.objects.filter(customer=customer, ordered_at__gte=cutoff)))
        .exclude(Exists(Interaction.objects.filter(customer=customer, occurred_at__gte=cutoff,
                                                   kind__in=[InteractionKind.PURCHASE, InteractionKind.REFUND,
                                                             InteractionKind.VISIT])))
        .exclude(Exists(LedgerEntry.objects.filter(customer=customer, at__gte=cutoff, kind="redeem")))
        # A consent given or withdrawn by the customer is activity; an import repeating an old flag is not.
        .exclude(Exists(Consent.objects.filter(customer=customer, at__gte=cutoff).exclude(source=ConsentSource.IMPORT)))
        .exclude(Exists(DataSubjectRequest.objects.filter(customer=customer, status__in=OPEN_STATUSES)))
    )


def access_log_cutoff(now: dt.datetime) -> dt.datetime:
    return years_before(now, max(2, settings.DANGOL_RETENTION_ACCESS_LOG_YEARS))


def old_import_errors(now: dt.datetime):
    from dangol.ingest.models import RowError

    cutoff = now - dt.timedelta(days=settings.DANGOL_RETENTION_IMPORT_ERRORS_DAYS)
    return RowError.objects.filter(job__created_at__lt=cutoff)


@dataclass
class RetentionReport:
    dry_run: bool
    now: dt.datetime
    customer_years: int
    customers: int = 0
    customers_by_unit: dict[str, int] = field(default_factory=dict)
    sample_ids: list[int] = field(default_factory=list)
    access_log_events: int = 0
    import_errors: int = 0

    def lines(self) -> list[str]:
        verb = "would be" if self.dry_run else "were"
        out = [
            f"Retention {'dry run' if self.dry_run else 'run'} at {timezone.localtime(self.now):%Y-%m-%d %H:%M %Z}",
            f"- customers without activity for {self.customer_years} years: {self.customers} {verb} anonymised",
        ]
        out += [f"    {unit}: {count}" for unit, count in sorted(self.customers_by_unit.items())]
        if self.sample_ids:
            out.append("    ids: " + ", ".join(map(str, self.sample_ids)) + (" …" if self.customers > len(self.sample_ids) else ""))
        out.append(f"- access log events older than {max(2, settings.DANGOL_RETENTION_ACCESS_LOG_YEARS)} years: "
                   f"{self.access_log_events} {verb} deleted")
        out.append(f"- rejected import rows older than {settings.DANGOL_RETENTION_IMPORT_ERRORS_DAYS} days: "
                   f"{self.import_errors} {verb} deleted")
        out.append(f"customers: {self.customers}, access_log_events: {self.access_log_events}, "
                   f"import_errors: {self.import_errors}")
        return out

    @property
    def text(self) -> str:
        return "\n".join(self.lines())


def run_retention(*, dry_run: bool, now: dt.datetime | None = None, actor: Actor | None = None,
                  sample: int = 20) -> RetentionReport:
    now = now or timezone.now()
    actor = actor or Actor.system("schedule")
    report = RetentionReport(dry_run=dry_run, now=now, customer_years=settings.DANGOL_RETENTION_CUSTOMER_YEARS)
    due = inactive_customers(now=now)
    report.customers_by_unit = {
        (code or "-"): n for code, n in due.values_list("home_unit__code").annotate(n=Count("id")).values_list("home_unit__code", "n")
    }
    report.customers = sum(report.customers_by_unit.values())
    report.sample_ids = list(due.order_by("id").values_list("pk", flat=True)[:sample])
    old_events = AuditEvent.objects.filter(at__lt=access_log_cutoff(now))
    errors = old_import_errors(now)
    report.access_log_events = old_events.count()
    report.import_errors = errors.count()
    if dry_run:
        return report
    ids = list(due.values_list("pk", flat=True))
    for start in range(0, len(ids), CHUNK):  # one transaction per chunk: a long run commits as it goes
        erase_customers(ids=ids[start:start + CHUNK], actor=actor, action="privacy.retention_erase")
    with transaction.atomic():
        old_events.delete()
        errors.delete()
    return report
