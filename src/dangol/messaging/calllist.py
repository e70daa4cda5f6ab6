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
