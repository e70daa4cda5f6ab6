"""The call list's file writers (CSV for Korean Excel, XLSX) from plain rows."""
from __future__ import annotations

import csv
import datetime as dt
import io

from django.utils import translation
from openpyxl import load_workbook

from dangol.messaging.calllist import CallRow, to_csv, to_xlsx

ROWS = [
    CallRow(customer_id=7, name="김하늘", phone="010-1234-5678", unit="한빛호텔 서울", stage="Regular",
            consent_at=dt.datetime(2026, 3, 1, 1, 30, tzinfo=dt.timezone.utc), last_purchase_on=dt.date(2026, 11, 1)),
    CallRow(customer_id=8, name="=HYPERLINK(\"http://evil\")", phone="010-****-9999", unit="한빛 베이커리", stage="Customer",
            consent_at=None, last_purchase_on=None),
]


def test_csv_has_a_bom_korean_text_seoul_times_and_defused_formulas():
    with translation.override("en"):
        data = to_csv(ROWS)
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Customer no.", "Name", "Phone"]
    assert rows[1] == ["7", "김하늘", "010-1234-5678", "한빛호텔 서울", "Regular", "2026-03-01 10:30", "2026-11-01"]
    assert rows[2][1].startswith("'=") and rows[2][2] == "010-****-9999" and rows[2][5] == ""


def test_xlsx_keeps_numbers_as_text():
    with translation.override("en"):
        data = to_xlsx(ROWS)
    sheet = load_workbook(io.BytesIO(data)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][2] == "Phone"
    assert values[1][:3] == (7, "김하늘", "010-1234-5678")
    assert values[2][1].startswith("'=")
