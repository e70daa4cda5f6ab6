"""Writes of segments: create and edit, freeze as a static list, import from a CSV of phone numbers, export to CSV.

Freezing and importing are set-based (one INSERT … SELECT); an export is audited with the reason the user gave, and
shows full contacts only to users who may see them."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import audit
from dangol.core.audit import Actor
from dangol.core.masking import mask_email, mask_name
from dangol.core.models import BusinessUnit, User
from dangol.core.phones import display_phone, mask_phone, try_normalize_phone
from dangol.core.selectors import units_for
from dangol.customers.models import ContactKind, ContactPoint
from dangol.customers.selectors import with_list_columns

from . import rules, selectors
from .models import Segment, SegmentExport, SegmentKind, SegmentMember

MAX_IMPORT_BYTES = 20 * 1024 * 1024


def check_unit(user: User, unit: BusinessUnit | None) -> None:
    """A segment or campaign belongs to one of the user's units; group-wide ones are for admins."""
    if unit is None:
        if not user.sees_all_units:
            raise ValidationError({"unit": [_("Choose one of your business units.")]})
        return
    if not units_for(user).filter(pk=unit.pk).exists():
        raise ValidationError({"unit": [_("You cannot work with this business unit.")]})


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({"name": [_("Give the segment a name.")]})
    return name[:120]


@transaction.atomic
def create_segment(*, actor: Actor, name: str, unit: BusinessUnit | None, tree: dict, description: str = "") -> Segment:
    check_unit(actor.user, unit)
    cleaned = rules.clean_tree(tree)
    segment = Segment.objects.create(name=_clean_name(name), description=(description or "")[:300], unit=unit,
                                     rules=cleaned, created_by=actor.user)
    audit.record(actor=actor, action="segment.create", obj=segment, fields=["rules"])
    return segment


@transaction.atomic
def update_segment(*, actor: Actor, segment: Segment, name: str, tree: dict, description: str = "") -> Segment:
    if segment.kind == SegmentKind.STATIC:
        raise ValidationError(_("A static segment keeps its list; copy its rules into a new segment to change them."))
    segment.name, segment.description, segment.rules = _clean_name(name), (description or "")[:300], rules.clean_tree(tree)
    segment.save()
    audit.record(actor=actor, action="segment.update", obj=segment, fields=["rules"])
    return segment


def _insert_members(segment: Segment, sql: str, params) -> int:
    table = SegmentMember._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} (segment_id, customer_id) SELECT %s, sub.cid FROM ({sql}) sub",
                       [segment.pk, *params])
        return cursor.rowcount


@transaction.atomic
def freeze_segment(*, actor: Actor, segment: Segment, name: str = "") -> Segment:
    """A static copy of a dynamic segment's present members (the original stays dynamic)."""
    check_unit(actor.user, segment.unit)
    now = timezone.now()
    frozen = Segment.objects.create(
        name=_clean_name(name or _("%(name)s (frozen %(date)s)") % {"name": segment.name,
                                                                     "date": timezone.localdate(now).isoformat()}),
        description=segment.description, unit=segment.unit, kind=SegmentKind.STATIC, rules=segment.rules,
        frozen_at=now, created_by=actor.user)
    sql, params = selectors.segment_sql(segment, user=actor.user, now=now)
    frozen.member_count = _insert_members(frozen, sql, params)
    frozen.save(update_fields=["member_count"])
    audit.record(actor=actor, action="segment.freeze", obj=frozen, fields=["members"])
    return frozen


@dataclass
class ImportResult:
    segment: Segment | None
    read: int
    matched: int
    unknown: int
    invalid: int


def _phones_from_csv(data: bytes) -> tuple[list[str], int, int]:
    if len(data) > MAX_IMPORT_BYTES:
        raise ValidationError({"file": [_("The file is larger than 20 MB.")]})
    for encoding in ("utf-8-sig", "cp949"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValidationError({"file": [_("The file is neither UTF-8 nor CP949 text.")]})
    read = invalid = 0
    phones: list[str] = []
    for row in csv.reader(io.StringIO(text)):
        cells = [c.strip() for c in row if c.strip()]
        if not cells:
            continue
        found = next((e164 for cell in cells if (e164 := try_normalize_phone(cell))), None)
        if found is None:
            if read == 0 and not phones:
                continue  # a header row
            invalid += 1
        else:
            phones.append(found)
        read += 1
    return list(dict.fromkeys(phones)), read, invalid


@transaction.atomic
def import_segment(*, actor: Actor, name: str, unit: BusinessUnit | None, data: bytes) -> ImportResult:
    """A static segment of the customers whose phone numbers a CSV lists (any column, any common format), within the
    user's business units. Unknown and invalid numbers are counted, not stored."""
    check_unit(actor.user, unit)
    phones, read, invalid = _phones_from_csv(data)
    if not phones:
        raise ValidationError({"file": [_("The file has no phone numbers.")]})
    segment = Segment.objects.create(name=_clean_name(name), unit=unit, kind=SegmentKind.STATIC, frozen_at=timezone.now(),
                                     created_by=actor.user, description=_("Imported from a list of phone numbers"))
    matched_customers = 0
    numbers_found = set()
    for start in range(0, len(phones), 5000):
        chunk = phones[start:start + 5000]
        contacts = ContactPoint.objects.filter(kind=ContactKind.PHONE, value__in=chunk)
        numbers_found.update(contacts.values_list("value", flat=True))
        customers = selectors.segment_customers(Segment(kind=SegmentKind.DYNAMIC, unit=unit, rules={"op": "and", "rules": []}),
                                                user=actor.user) \
            .filter(pk__in=contacts.values("customer_id")).order_by().annotate(cid=F("pk")).values("cid")
        sql, params = customers.query.sql_with_params()
        with connection.cursor() as cursor:
            table = SegmentMember._meta.db_table
            cursor.execute(f"INSERT INTO {table} (segment_id, customer_id) SELECT %s, sub.cid FROM ({sql}) sub "
                           f"WHERE NOT EXISTS (SELECT 1 FROM {table} m WHERE m.segment_id = %s AND m.customer_id = sub.cid)",
                           [segment.pk, *params, segment.pk])
            matched_customers += cursor.rowcount
    segment.member_count = matched_customers
    segment.save(update_fields=["member_count"])
    audit.record(actor=actor, action="segment.import", obj=segment, fields=["members"])
    return ImportResult(segment=segment, read=read, matched=matched_customers, unknown=len(phones) - len(numbers_found),
                        invalid=invalid)


EXPORT_COLUMNS = ["customer_id", "name", "phone", "email", "sido", "sigungu"]


def export_rows(*, actor: Actor, segment: Segment, reason: str):
    """Yields the CSV lines of the segment's members (a header first); masked unless the user may see contacts.
    The export is recorded (who, when, why, how many rows) before the first line is produced."""
    reason = " ".join((reason or "").split())
    if len(reason) < 5:
        raise ValidationError({"reason": [_("Say why you export these contacts (at least 5 characters).")]})
    full = actor.user.may_see_full_contacts
    qs = with_list_columns(selectors.segment_customers(segment, user=actor.user)).order_by("pk")
    count = qs.count()
    SegmentExport.objects.create(segment=segment, user=actor.user, reason=reason[:300], rows=count, full_contacts=full)
    audit.record(actor=actor, action="segment.export_full" if full else "segment.export_masked", obj=segment,
                 fields=["name", "phone", "email", "address"])

    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        for row in qs.values_list("pk", "name", "primary_phone", "primary_email", "region_sido", "region_sigungu").iterator(2000):
            pk, name, phone, email, sido, sigungu = row
            if full:
                writer.writerow([pk, name, display_phone(phone) if phone else "", email or "", sido or "", sigungu or ""])
            else:
                writer.writerow([pk, mask_name(name), mask_phone(phone) if phone else "", mask_email(email) if email else "",
                                 sido or "", sigungu or ""])
            if buffer.tell() > 65536:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return count, lines()


def on_customers_merged(*, survivor, merged, merge=None, moved=None, **_ignored) -> None:
    """A merged record's places in static segments go to the survivor (unless it is there already); the undo moves
    exactly those back."""
    rows = list(SegmentMember.objects.filter(customer=merged).values_list("pk", "segment_id"))
    present = set(SegmentMember.objects.filter(customer=survivor).values_list("segment_id", flat=True))
    move = [pk for pk, segment_id in rows if segment_id not in present]
    SegmentMember.objects.filter(pk__in=move).update(customer=survivor)
    if moved is not None:
        moved["segment_members"] = move


def on_customers_unmerged(*, survivor, merged, merge=None, moved=None, **_ignored) -> None:
    SegmentMember.objects.filter(pk__in=(moved or {}).get("segment_members", []), customer=survivor).update(customer=merged)
