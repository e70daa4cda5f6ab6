"""The telemarketing call list: customers of a business unit whom the compliance engine allows to be called with an
offer (current consent for the channel "phone", not suppressed, processing not suspended), as CSV or XLSX.

Full phone numbers only for roles that may see them (``user.may_see_full_contacts``); the others get the masked
number, which is still useful to recognise a customer who calls back. The file writers take plain rows, so they
are tested without a database; ``call_list_rows`` reads the rows."""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Iterable, Sequence

from django.utils.translation import gettext as _

MAX_ROWS = 100_000  # one download; a bigger list is narrowed with the filters


@dataclass(frozen=True)
class CallRow:
    customer_id: int
    name: str
    phone: str  # full (010-1234-5678) or masked (010-****-5678), decided by the reader
    unit: str
    stage: str
    consent_at: dt.datetime | None
    last_purchase_on: dt.date | None


def headers() -> list[str]:
    return [_("Customer no."), _("Name"), _("Phone"), _("Business unit"), _("Stage"), _("Phone consent given"),
            _("Last purchase")]


def _cells(row: CallRow) -> list:
    consent = row.consent_at.astimezone(_seoul()).strftime("%Y-%m-%d %H:%M") if row.consent_at else ""
    return [row.customer_id, row.name, row.phone, row.unit, row.stage, consent,
            row.last_purchase_on.isoformat() if row.last_purchase_on else ""]


def _seoul():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Seoul")


def _safe_cell(value):
    """A cell that starts like a formula (=, +, -, @) is prefixed with a quote: a name such as ``=HYPERLINK(…)`` in the
    database must not run in the spreadsheet of whoever opens the list (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(rows: Iterable[CallRow]) -> bytes:
    """UTF-8 with a byte-order mark: Korean Excel opens it with the right encoding."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers())
    for row in rows:
        writer.writerow([_safe_cell(value) for value in _cells(row)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(rows: Sequence[CallRow] | Iterable[CallRow]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_("Call list"))
    sheet.append(headers())
    for row in rows:
        cells = _cells(row)
        # Phone numbers and names stay text (a leading 0 kept, nothing evaluated).
        sheet.append([cells[0]] + [_safe_cell(str(value)) for value in cells[1:]])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


# --- reading the list --------------------------------------------------------------------------------------------------

def call_list_rows(*, user, unit, stage: str = "", now: dt.datetime | None = None, limit: int = MAX_ROWS) -> list[CallRow]:
    """Members of ``unit`` (within the user's scope) whom the compliance engine lets us call with an offer: the same
    rules as every message (``compliance.annotate_decisions`` for channel "phone", kind "ad"), in one query. A
    customer held only by the night rule is listed (the call is made in the daytime); blocked ones are not."""
    from django.db.models import Exists, Max, OuterRef, Subquery
    from django.utils import timezone

    from dangol.core.masking import mask_name
    from dangol.core.phones import display_phone, mask_phone
    from dangol.customers.models import Consent, Membership, Purpose
    from dangol.customers.selectors import customers_for
    from dangol.sales.models import Order

    from . import compliance
    from .models import Channel, Kind, Subtype

    now = now or timezone.now()
    customers = customers_for(user).filter(Exists(Membership.objects.filter(customer=OuterRef("pk"), unit=unit)))
    if stage:
        customers = customers.filter(stage=stage)
    customers = compliance.annotate_decisions(customers, channel=Channel.PHONE, kind=Kind.AD, subtype=Subtype.PHONE, now=now)
    consent_at = Subquery(Consent.objects.filter(customer=OuterRef("pk"), channel=Channel.PHONE, purpose=Purpose.MARKETING,
                                                 granted=True).order_by("-at").values("at")[:1])
    last_order = Subquery(Order.objects.filter(customer=OuterRef("pk"), kind="sale").order_by()
                          .values("customer").annotate(last=Max("ordered_at")).values("last")[:1])
    rows = (customers.exclude(m_outcome=compliance.BLOCK)
            .annotate(c_consent_at=consent_at, c_last_order=last_order)
            .order_by("pk")
            .values_list("pk", "name", "m_to", "stage", "c_consent_at", "c_last_order")[:limit])
    full = user.may_see_full_contacts
    stages = dict(_stage_labels())
    return [CallRow(customer_id=pk, name=name if full else mask_name(name),
                    phone=display_phone(phone) if full else mask_phone(phone), unit=unit.name,
                    stage=str(stages.get(stage_value, stage_value)), consent_at=consent,
                    last_purchase_on=last.astimezone(_seoul()).date() if last else None)
            for pk, name, phone, stage_value, consent, last in rows]


def _stage_labels():
    from dangol.customers.models import Stage

    return Stage.choices


def export_call_list(*, actor, user, unit, reason: str, file_format: str, stage: str = "") -> tuple[bytes, int]:
    """The file and its row count; the download is audited (who, which unit, full or masked, the reason given)."""
    from django.core.exceptions import PermissionDenied, ValidationError

    from dangol.core import audit
    from dangol.core.selectors import units_for

    reason = " ".join((reason or "").split())
    if len(reason) < 5:
        raise ValidationError({"reason": [_("Say why you need this list (at least 5 characters).")]})
    if len(reason) > 200:
        raise ValidationError({"reason": [_("Keep the reason under 200 characters.")]})
    if file_format not in ("csv", "xlsx"):
        raise ValidationError({"file_format": [_("Choose CSV or XLSX.")]})
    if not units_for(user).filter(pk=unit.pk).exists():
        raise PermissionDenied(_("This business unit is not yours."))
    rows = call_list_rows(user=user, unit=unit, stage=stage)
    data = to_csv(rows) if file_format == "csv" else to_xlsx(rows)
    contacts = "phone" if user.may_see_full_contacts else "phone_masked"
    # The audit trail keeps field names, never values; the reason is the staff member's own words, kept with them.
    audit.record(actor=actor, action="messaging.call_list", obj=unit,
                 fields=["name", contacts, f"rows:{len(rows)}", f"format:{file_format}", f"reason:{reason}"])
    return data, len(rows)
