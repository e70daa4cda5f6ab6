"""Erasure by anonymisation (개인정보보호법 §21, §36): the person disappears, the business's numbers do not.

The customer row stays as an anonymous shell ("삭제된 고객 #id", ``erased_at`` set, processing suspended) so that
orders, points and every aggregate built on them stay exactly as they were; everything that identifies or
describes the person is deleted or blanked, set-based for any number of customers:

- customers: name, gender, tags, contacts (phones, emails and their last four digits), addresses, anniversaries,
  preferences, notes and visits, the text of other timeline entries; the free-text evidence of consents;
- records merged into the customer (the same person) are erased with it;
- ingest: the units' own ids and row digests (SourceRecord), open duplicate pairs, the name kept by a merge's undo data;
- loyalty: the free-text reason of manual adjustments;
- privacy: the text of the customer's requests.

Then ``customer_erased(customer_id=…)`` is emitted once per erased row, inside the same transaction, so that every
app scrubs what it holds (message bodies and addresses, case texts, survey comments…); ``customers_erased(customer_ids=
[…])`` is emitted first, once per chunk, for apps that scrub set-based (a retention run may erase thousands).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from dangol.core import audit, events
from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.customers.models import (
    Address,
    Anniversary,
    Consent,
    ContactPoint,
    Customer,
    Interaction,
    InteractionKind,
    Preference,
    Tag,
)

ERASED_NAME_PREFIX = "삭제된 고객 #"
CHUNK = 1000  # customers per statement batch: bounded IN lists on every database


def erased_name(customer_id: int) -> str:
    return f"{ERASED_NAME_PREFIX}{customer_id}"


@dataclass
class ErasureResult:
    customers: int = 0
    contacts: int = 0
    addresses: int = 0
    anniversaries: int = 0
    preferences: int = 0
    notes: int = 0

    def add(self, other: "ErasureResult") -> None:
        for key in self.__dataclass_fields__:
            setattr(self, key, getattr(self, key) + getattr(other, key))

    @property
    def summary_line(self) -> str:
        return ", ".join(f"{key}: {getattr(self, key)}" for key in self.__dataclass_fields__)


def with_merged_records(ids: list[int]) -> list[int]:
    """The ids and every record merged into them (recursively): a merged record is the same person."""
    found = set(ids)
    frontier = set(ids)
    while frontier:
        more = set(Customer.objects.filter(merged_into_id__in=frontier).values_list("pk", flat=True)) - found
        found |= more
        frontier = more
    return sorted(found)


@transaction.atomic
def erase_customers(*, ids: list[int], actor: Actor, action: str = "privacy.erase") -> ErasureResult:
    """Anonymise these customers (and the records merged into them). Already erased ones are left as they are."""
    result = ErasureResult()
    targets = with_merged_records(list(ids))
    targets = list(Customer.objects.filter(pk__in=targets, erased_at__isnull=True).values_list("pk", flat=True))
    for start in range(0, len(targets), CHUNK):
        chunk = targets[start:start + CHUNK]
        result.add(_erase_chunk(chunk))
        _audit_many(actor=actor, action=action, ids=chunk)
        # Set-based apps subscribe to customers_erased (one call per chunk of up to 1,000 ids); the others to
        # customer_erased (one call per customer). Scrubbing twice is harmless: subscribe to one of them.
        events.emit("customers_erased", customer_ids=list(chunk))
        for customer_id in chunk:
            events.emit("customer_erased", customer_id=customer_id)
    return result


ERASED_FIELDS = sorted(["name", "gender", "tags", "contacts", "addresses", "anniversaries", "preferences", "notes"])


def _audit_many(*, actor: Actor, action: str, ids: list[int]) -> None:
    """One audit event per erased customer, written in one statement (what ``audit.record`` writes, for many)."""
    if len(ids) == 1:
        audit.record(actor=actor, action=action, obj=Customer(pk=ids[0]), fields=ERASED_FIELDS)
        return
    label = actor.user.get_username() if actor.user else f"system:{actor.via}"
    AuditEvent.objects.bulk_create([
        AuditEvent(actor=actor.user, actor_label=label, action=action, object_type=Customer._meta.label_lower,
                   object_id=str(pk), fields=ERASED_FIELDS, ip=actor.ip, via=actor.via)
        for pk in ids
    ])


def _erase_chunk(ids: list[int]) -> ErasureResult:
    from dangol.ingest.models import DuplicateCandidate, Merge, SourceRecord
    from dangol.loyalty.models import LedgerEntry

    from .models import DataSubjectRequest

    now = timezone.now()
    result = ErasureResult(customers=len(ids))
    Customer.objects.filter(pk__in=ids).update(
        name=Concat(Value(ERASED_NAME_PREFIX), Cast("id", output_field=CharField())), gender="",
        erased_at=now, processing_suspended=True, updated_at=now,
    )
    links = Customer.tags.through.objects.filter(customer_id__in=ids)
    tag_ids = list(links.values_list("tag_id", flat=True).distinct())
    links.delete()
    # A tag nobody else carries may name the person ("홍길동 VIP"): it goes with them.
    Tag.objects.filter(pk__in=tag_ids, customers__isnull=True).delete()
    result.contacts = ContactPoint.objects.filter(customer_id__in=ids).delete()[0]
    result.addresses = Address.objects.filter(customer_id__in=ids).delete()[0]
    result.anniversaries = Anniversary.objects.filter(customer_id__in=ids).delete()[0]
    result.preferences = Preference.objects.filter(customer_id__in=ids).delete()[0]
    result.notes = Interaction.objects.filter(customer_id__in=ids, kind__in=[InteractionKind.NOTE, InteractionKind.VISIT]).delete()[0]
    # Purchases and refunds keep their summary (products and line counts: the order's own facts); anything else
    # written about the person (messages, cases…) loses its text.
    Interaction.objects.filter(customer_id__in=ids).exclude(kind__in=[InteractionKind.PURCHASE, InteractionKind.REFUND]) \
        .update(summary="", body="", sensitive_text="")
    Interaction.objects.filter(customer_id__in=ids).update(body="", sensitive_text="")
    Consent.objects.filter(customer_id__in=ids).exclude(evidence="").update(evidence="")

    SourceRecord.objects.filter(customer_id__in=ids).delete()
    SourceRecord.objects.filter(original_customer_id__in=ids).update(original_customer=None)
    DuplicateCandidate.objects.filter(left_id__in=ids).delete()
    DuplicateCandidate.objects.filter(right_id__in=ids).delete()
    for merge in Merge.objects.filter(survivor_id__in=ids).exclude(before={}):
        # The undo data keeps the survivor's earlier name: it becomes the anonymous one (the undo still works).
        merge.before = {**merge.before, "name": erased_name(merge.survivor_id), "gender": ""}
        merge.save(update_fields=["before"])
    # Ledger entries are otherwise immutable; a manual adjustment's reason is free text typed by staff.
    LedgerEntry.objects.filter(customer_id__in=ids, kind="adjust").exclude(reason="").update(reason="")
    DataSubjectRequest.objects.filter(customer_id__in=ids).exclude(details="").update(details="")
    return result
