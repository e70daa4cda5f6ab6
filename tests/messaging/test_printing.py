"""The direct-mail print file: letters and address labels, read back with pypdf."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from pypdf import PdfReader

from dangol.messaging.printing import LABELS_PER_SHEET, Letter, Sender, direct_mail_pdf, label_sheet_count

SENDER = Sender(name="한빛호텔 서울", address="서울특별시 중구 소공로 106", contact="02-771-0000")


def letters(n: int) -> list[Letter]:
    return [Letter(recipient=f"김하늘{i}", postal_code="06236", address="서울특별시 강남구 테헤란로 152",
                   subject="겨울 패키지 안내", body=f"안녕하세요.\n\n{i}번째 편지입니다.", reference=f"M{i}") for i in range(n)]


def pages_text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def test_it_prints_a_letter_per_recipient_then_the_label_sheets():
    pdf = direct_mail_pdf(letters(30), sender=SENDER, printed_on=dt.date(2026, 11, 24))
    assert pdf.startswith(b"%PDF")
    text = pages_text(pdf)
    assert len(text) == 30 + label_sheet_count(30) == 32
    first = text[0]
    for expected in ("한빛호텔 서울", "02-771-0000", "(우) 06236", "서울특별시 강남구 테헤란로 152", "김하늘0 님", "2026. 11. 24.",
                     "겨울 패키지 안내", "0번째 편지입니다.", "M0"):
        assert expected in first
    assert "김하늘29 님" in text[29]
    labels = text[30] + text[31]
    assert all(f"김하늘{i} 님" in labels for i in range(30))
    assert text[30].count("(우) 06236") == LABELS_PER_SHEET
    assert text[31].count("(우) 06236") == 30 - LABELS_PER_SHEET


def test_labels_only_and_letters_only():
    assert len(pages_text(direct_mail_pdf(letters(25), sender=SENDER, with_letters=False))) == 2
    assert len(pages_text(direct_mail_pdf(letters(3), sender=SENDER, with_labels=False))) == 3


def test_customer_text_is_printed_as_text_not_markup():
    evil = Letter(recipient="<b>홍길동</b>", postal_code="", address="부산 & <i>해운대구</i>", body="<font size=40>x</font>")
    text = pages_text(direct_mail_pdf([evil], sender=SENDER))[0]
    assert "<b>홍길동</b> 님" in text and "부산 & <i>해운대구</i>" in text and "<font size=40>x</font>" in text


def test_a_very_long_address_shrinks_into_its_label():
    long = Letter(recipient="남궁민수", postal_code="48058", address="부산광역시 해운대구 " + "센텀중앙로 " * 30, body="")
    text = pages_text(direct_mail_pdf([long] * 3, sender=SENDER, with_letters=False))
    assert len(text) == 1 and text[0].count("남궁민수 님") == 3


def test_an_empty_batch_still_makes_a_valid_file_and_a_huge_one_is_refused(monkeypatch):
    assert len(pages_text(direct_mail_pdf([], sender=SENDER))) == 1
    monkeypatch.setattr("dangol.messaging.printing.MAX_LETTERS", 2)
    with pytest.raises(ValueError):
        direct_mail_pdf(letters(3), sender=SENDER)
