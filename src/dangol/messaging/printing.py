"""Printed direct mail: one PDF with a letter per recipient followed by sheets of address labels.

The PDF is built from plain values (``Letter``, ``Sender``) so that it can be tested without a database; the batch
reader at the bottom turns the outbox's ``post`` messages into letters. Korean text uses reportlab's built-in CID font
HYSMyeongJo-Medium (Adobe-Korea1): no font file ships with Dangol, PDF readers bring the glyphs.

Labels: A4 sheets of 3 × 8 labels of 63.5 × 33.9 mm, the common Korean/European office label layout (Formtec LS-3108
/ Avery L7160 size), so a batch prints straight onto a label sheet.
"""
from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from html import escape
from typing import Iterable, Sequence

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import (BaseDocTemplate, Frame, KeepInFrame, NextPageTemplate, PageBreak, PageTemplate, Paragraph,
                                Spacer, Table, TableStyle)

FONT = "HYSMyeongJo-Medium"
LABEL_COLUMNS, LABEL_ROWS = 3, 8
LABEL_WIDTH, LABEL_HEIGHT = 63.5 * mm, 33.9 * mm
LABELS_PER_SHEET = LABEL_COLUMNS * LABEL_ROWS
MAX_LETTERS = 20_000  # one print run; a bigger batch is split by the caller (memory stays bounded)


@dataclass(frozen=True)
class Sender:
    name: str
    address: str = ""
    contact: str = ""


@dataclass(frozen=True)
class Letter:
    recipient: str
    postal_code: str
    address: str
    body: str
    subject: str = ""
    reference: str = ""  # printed small on the letter: which message this is (for returned mail)


def _register_font() -> None:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def _styles() -> dict[str, ParagraphStyle]:
    _register_font()
    # wordWrap="CJK" breaks between any two Hangul syllables as well as at spaces: long words never overflow.
    base = ParagraphStyle("base", fontName=FONT, fontSize=10.5, leading=16, wordWrap="CJK")
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=8, leading=11, textColor="#555555"),
        "sender": ParagraphStyle("sender", parent=base, fontSize=9, leading=13),
        "recipient": ParagraphStyle("recipient", parent=base, fontSize=12, leading=18),
        "subject": ParagraphStyle("subject", parent=base, fontSize=13, leading=19, spaceBefore=6, spaceAfter=8),
        "label": ParagraphStyle("label", parent=base, fontSize=9, leading=12),
        "label_name": ParagraphStyle("label_name", parent=base, fontSize=10.5, leading=14),
    }


def _text(value: str) -> str:
    """Customer text into reportlab's paragraph markup: escaped (a name like <b> stays text), line breaks kept."""
    return "<br/>".join(escape(line, quote=False) for line in (value or "").replace("\r\n", "\n").split("\n"))


def _postal(code: str) -> str:
    return f"(우) {code}" if code else ""


def _letter_flowables(letter: Letter, sender: Sender, styles, printed_on: dt.date) -> list:
    parts: list = []
    sender_lines = [sender.name, sender.address, sender.contact]
    parts.append(Paragraph(_text("\n".join(line for line in sender_lines if line)), styles["sender"]))
    parts.append(Spacer(1, 14 * mm))
    # The recipient block sits where a window envelope (DL, window on the left) shows it.
    recipient = [_postal(letter.postal_code), letter.address, f"{letter.recipient} 님"]
    parts.append(Paragraph(_text("\n".join(line for line in recipient if line)), styles["recipient"]))
    parts.append(Spacer(1, 16 * mm))
    parts.append(Paragraph(printed_on.strftime("%Y. %m. %d."), styles["small"]))
    if letter.subject:
        parts.append(Paragraph(_text(letter.subject), styles["subject"]))
    else:
        parts.append(Spacer(1, 6 * mm))
    for paragraph in (letter.body or "").replace("\r\n", "\n").split("\n\n"):
        parts.append(Paragraph(_text(paragraph), styles["body"]))
        parts.append(Spacer(1, 3 * mm))
    if letter.reference:
        parts.append(Spacer(1, 8 * mm))
        parts.append(Paragraph(_text(letter.reference), styles["small"]))
    return parts


def _label_cell(letter: Letter, styles) -> KeepInFrame:
    content = [Paragraph(_text(_postal(letter.postal_code)), styles["label"]),
               Paragraph(_text(letter.address), styles["label"]),
               Paragraph(_text(f"{letter.recipient} 님"), styles["label_name"])]
    # A very long address shrinks to fit its label instead of spilling over the next one.
    return KeepInFrame(LABEL_WIDTH - 6 * mm, LABEL_HEIGHT - 4 * mm, content, mode="shrink")


def _label_sheets(letters: Sequence[Letter], styles) -> list:
    parts: list = []
    for start in range(0, len(letters), LABELS_PER_SHEET):
        chunk = list(letters[start:start + LABELS_PER_SHEET])
        cells = [_label_cell(letter, styles) for letter in chunk] + [""] * (LABELS_PER_SHEET - len(chunk))
        rows = [cells[r * LABEL_COLUMNS:(r + 1) * LABEL_COLUMNS] for r in range(LABEL_ROWS)]
        table = Table(rows, colWidths=[LABEL_WIDTH] * LABEL_COLUMNS, rowHeights=[LABEL_HEIGHT] * LABEL_ROWS)
        table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LEFTPADDING", (0, 0), (-1, -1), 3 * mm),
                                   ("RIGHTPADDING", (0, 0), (-1, -1), 3 * mm)]))
        if parts:
            parts.append(PageBreak())
        parts.append(table)
    return parts


def direct_mail_pdf(letters: Iterable[Letter], *, sender: Sender, with_letters: bool = True, with_labels: bool = True,
                    printed_on: dt.date | None = None, title: str = "Dangol direct mail") -> bytes:
    """The print file of a batch: a page (or more) per letter, then the label sheets, in the same order."""
    letters = list(letters)
    if len(letters) > MAX_LETTERS:
        raise ValueError(f"at most {MAX_LETTERS} letters per print file")
    styles = _styles()
    printed_on = printed_on or dt.date.today()
    buffer = io.BytesIO()
    page_w, page_h = A4
    doc = BaseDocTemplate(buffer, pagesize=A4, title=title, author=sender.name, creator="Dangol")
    letter_frame = Frame(25 * mm, 20 * mm, page_w - 45 * mm, page_h - 40 * mm, id="letter")
    # Label sheets: the grid centred on the page (margins 9.75 mm left/right, 12.9 mm top/bottom), no frame padding.
    grid_w, grid_h = LABEL_WIDTH * LABEL_COLUMNS, LABEL_HEIGHT * LABEL_ROWS
    label_frame = Frame((page_w - grid_w) / 2, (page_h - grid_h) / 2, grid_w, grid_h, id="labels",
                        leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
    templates = [PageTemplate(id="letter", frames=[letter_frame]), PageTemplate(id="labels", frames=[label_frame])]
    if not with_letters:
        templates.reverse()  # the first template is the first page's
    doc.addPageTemplates(templates)
    story: list = []
    if with_letters:
        for index, letter in enumerate(letters):
            if index:
                story.append(PageBreak())
            story.extend(_letter_flowables(letter, sender, styles, printed_on))
    if with_labels and letters:
        if story:
            story += [NextPageTemplate("labels"), PageBreak()]
        story.extend(_label_sheets(letters, styles))
    if not story:
        story.append(Paragraph("—", styles["body"]))
    doc.build(story)
    return buffer.getvalue()


def label_sheet_count(letters: int) -> int:
    return -(-letters // LABELS_PER_SHEET)


# --- a batch of the outbox's letters -----------------------------------------------------------------------------------

def letters_for(messages, *, now=None) -> tuple[list[Letter], list[int], int]:
    """The letters of the queued ``post`` messages among ``messages`` (a queryset), oldest first, with their ids.

    The compliance engine decided when each message was queued; it decides again here, for the moment of printing
    (``compliance.annotate_decisions`` for channel "post"), so a customer who withdrew, was suppressed, erased or
    merged in between gets no letter. Returns (letters, message ids, how many were left out)."""
    from django.db.models import Exists, OuterRef
    from django.utils import timezone

    from dangol.customers.models import Address, Customer

    from . import compliance
    from .models import Channel, Status

    now = now or timezone.now()
    queued = list(messages.filter(channel=Channel.POST, status=Status.QUEUED).order_by("created_at", "id")
                  .values("id", "customer_id", "kind", "subtype", "subject", "body")[:MAX_LETTERS])
    if not queued:
        return [], [], 0
    by_kind: dict[str, set[int]] = {}
    for row in queued:
        if row["customer_id"] is not None:
            by_kind.setdefault(row["kind"], set()).add(row["customer_id"])
    allowed: dict[str, set[int]] = {}
    for kind, ids in by_kind.items():
        allowed[kind] = set(compliance.annotate_decisions(
            Customer.objects.filter(pk__in=ids), channel=Channel.POST, kind=kind, subtype="post", now=now,
        ).exclude(m_outcome=compliance.BLOCK).values_list("pk", flat=True))
    customer_ids = {cid for ids in allowed.values() for cid in ids}
    names = dict(Customer.objects.filter(pk__in=customer_ids).values_list("pk", "name"))
    addresses = {row[0]: row[1:] for row in Address.objects.filter(customer_id__in=customer_ids, is_primary=True)
                 .exclude(line="").values_list("customer_id", "postal_code", "sido", "sigungu", "line")}
    letters, ids, left_out = [], [], 0
    for row in queued:
        cid = row["customer_id"]
        if cid is None or cid not in allowed.get(row["kind"], ()) or cid not in addresses:
            left_out += 1
            continue
        postal_code, sido, sigungu, line = addresses[cid]
        letters.append(Letter(recipient=names.get(cid, ""), postal_code=postal_code,
                              address=" ".join(part for part in (sido, sigungu, line) if part),
                              subject=row["subject"], body=row["body"], reference=f"M{row['id']}"))
        ids.append(row["id"])
    return letters, ids, left_out


def print_batch(*, messages, user=None, with_letters: bool = True, with_labels: bool = True, now=None) -> tuple[bytes, list[int]]:
    """The print file of a batch and the ids of the messages in it (the caller marks them handed over). Raises
    ValidationError when nothing in the batch may be printed."""
    from django.core.exceptions import ValidationError
    from django.utils.translation import gettext as _

    from .senders import sender_for

    letters, ids, _left_out = letters_for(messages, now=now)
    if not letters:
        raise ValidationError(_("Nothing to print: this batch has no queued letter to a customer who may receive it."))
    unit = messages.filter(pk=ids[0]).values_list("unit", flat=True).first()
    from dangol.core.models import BusinessUnit

    who = sender_for(BusinessUnit.objects.filter(pk=unit).first() if unit else None)
    sender = Sender(name=who.name, contact=who.contact)
    return direct_mail_pdf(letters, sender=sender, with_letters=with_letters, with_labels=with_labels), ids
