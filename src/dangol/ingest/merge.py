"""Merging two records of the same person, and undoing it.

A merge is soft: the merged record stays (``merged_into`` set, hidden by every selector) and its rows move to the
survivor by set-based UPDATEs, whatever their number. ``Merge.moved`` lists the ids moved per table and
``Merge.before`` the survivor's profile before the merge, so that ``unmerge`` moves exactly those rows back and
restores the survivor; rows added to the survivor after the merge stay with it.

Survivorship, field by field: name and gender from the more recently updated record (when it has one), the stage
furthest along, the earlier joined_at, the survivor's home unit (else the merged one's), the union of tags. Contact
points and addresses the survivor lacks move over; the more recently updated record's primary stays primary.
Consents: every event moves, so the decision in force per channel × purpose is the most recent one of either record
and a withdrawal is never overridden by an older grant.

Other apps move their own rows (points, messages…) in a ``customers_merged`` handler and add their ids to ``moved``;
they move them back in a ``customers_unmerged`` handler.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, Min, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import audit, events
from dangol.core.audit import Actor
from dangol.customers.models import (
    Address,
    Anniversary,
    AnniversaryKind,
    Consent,
    ContactPoint,
    Customer,
    Interaction,
    InteractionKind,
    Membership,
    Preference,
    Stage,
)
from dangol.sales.models import Order

from .models import CandidateStatus, DuplicateCandidate, Merge, SourceRecord

MERGE_REF_TYPE = "merge"
STAGE_ORDER = list(Stage.values)  # prospect < customer < regular < advocate < partner
# An IN list longer than this is split, so that a customer with very many orders stays under SQLite's variable limit.
_CHUNK = 5000


def choose_survivor(a: Customer, b: Customer) -> tuple[Customer, Customer]:
    """(survivor, merged): the record with more orders survives, then the earlier joined_at, then the lower id."""
    if a.pk == b.pk:
        raise ValidationError(_("A customer cannot be merged with itself."))
    counts = dict(Order.objects.filter(customer_id__in=[a.pk, b.pk]).order_by().values("customer_id")
                  .annotate(n=Count("id")).values_list("customer_id", "n"))
    a_key = (-counts.get(a.pk, 0), a.joined_at, a.pk)
    b_key = (-counts.get(b.pk, 0), b.joined_at, b.pk)
    return (a, b) if a_key <= b_key else (b, a)


@transaction.atomic
def merge_customers(*, actor: Actor, survivor: Customer, merged: Customer, automatic: bool = False,
                    match_probability: float | None = None) -> Merge:
    """Merge ``merged`` into ``survivor`` and return the logged, reversible Merge."""
    if survivor.pk is None or merged.pk is None or survivor.pk == merged.pk:
        raise ValidationError(_("A customer cannot be merged with itself."))
    if match_probability is not None and not 0.0 <= match_probability <= 1.0:
        raise ValidationError(_("A match probability is between 0 and 1."))
    # Both rows locked in id order (no deadlock between two merges taking them in opposite order); a second merge
    # of the same record waits here and then sees merged_into set.
    locked = {c.pk: c for c in Customer.objects.select_for_update().filter(pk__in=[survivor.pk, merged.pk]).order_by("pk")}
    if len(locked) != 2:
        raise ValidationError(_("One of the two customers no longer exists."))
    s, m = locked[survivor.pk], locked[merged.pk]
    for customer in (s, m):
        if customer.merged_into_id is not None:
            raise ValidationError(_("Customer #%(id)s has already been merged into customer #%(into)s.")
                                  % {"id": customer.pk, "into": customer.merged_into_id})
    now = timezone.now()
    merged_is_newer = m.updated_at > s.updated_at
    newer, older = (m, s) if merged_is_newer else (s, m)

    # The survivor's profile after the merge.
    profile = {
        "name": newer.name or older.name,
        "gender": newer.gender or older.gender,
        "stage": max(s.stage, m.stage, key=_stage_rank),
        "stage_set_by_staff": s.stage_set_by_staff or m.stage_set_by_staff,
        "joined_at": min(s.joined_at, m.joined_at),
        "home_unit_id": s.home_unit_id or m.home_unit_id,
        # The survivor now holds values as recent as the newer record's: a later merge compares on that.
        "updated_at": max(s.updated_at, m.updated_at),
    }
    tag_rows = list(Customer.tags.through.objects.filter(customer_id__in=[s.pk, m.pk]).values_list("customer_id", "tag_id"))
    survivor_tags = sorted(tag for owner, tag in tag_rows if owner == s.pk)
    added_tags = sorted({tag for owner, tag in tag_rows if owner == m.pk} - set(survivor_tags))

    before = {
        "name": s.name, "gender": s.gender, "stage": s.stage, "stage_set_by_staff": s.stage_set_by_staff,
        "joined_at": s.joined_at.isoformat(),
        "home_unit_id": s.home_unit_id, "updated_at": s.updated_at.isoformat(), "tag_ids": survivor_tags,
        "added_tag_ids": added_tags,
    }
    merge = Merge.objects.create(survivor=s, merged=m, automatic=automatic, match_probability=match_probability,
                                 before=before, moved={}, at=now, by=actor.user)
    moved: dict[str, list[int]] = {}

    if added_tags:
        Customer.tags.through.objects.bulk_create([Customer.tags.through(customer_id=s.pk, tag_id=tag) for tag in added_tags])

    contacts = _move_with_primaries(ContactPoint, s, m, merged_is_newer, group="kind", key=("kind", "value"))
    moved["contacts"] = contacts.moved
    before["primary_contact_ids"], before["merged_primary_contact_ids"] = contacts.survivor_primaries, contacts.merged_primaries
    addresses = _move_with_primaries(Address, s, m, merged_is_newer, group=None, key=("sido", "sigungu", "line", "postal_code"))
    moved["addresses"] = addresses.moved
    before["primary_address_id"] = addresses.survivor_primaries[0] if addresses.survivor_primaries else None
    before["merged_primary_address_id"] = addresses.merged_primaries[0] if addresses.merged_primaries else None

    moved["anniversaries"] = _move(Anniversary.objects.filter(customer=m).filter(_anniversaries_survivor_lacks(s)), s)
    moved["preferences"] = _move(Preference.objects.filter(customer=m), s)
    moved["interactions"] = _move(Interaction.objects.filter(customer=m), s)
    moved["memberships"] = _move(
        Membership.objects.filter(customer=m).exclude(unit_id__in=Membership.objects.filter(customer=s).values("unit_id")), s)
    moved["consents"] = _move(Consent.objects.filter(customer=m), s)
    moved["orders"] = _move(Order.objects.filter(customer=m), s)

    # Source ids: the merged record's member numbers now find the survivor; original_customer keeps whom the id
    # was first given to (filled in here where the import left it empty, and emptied again by unmerge).
    sources = list(SourceRecord.objects.filter(customer=m).order_by("id").values_list("id", "original_customer_id"))
    moved["source_records"] = [pk for pk, _original in sources]
    before["source_records_original_filled"] = [pk for pk, original in sources if original is None]
    if before["source_records_original_filled"]:
        SourceRecord.objects.filter(customer=m, original_customer__isnull=True).update(original_customer=m)
    if sources:
        SourceRecord.objects.filter(customer=m).update(customer=s)

    Customer.objects.filter(pk=s.pk).update(**profile)
    Customer.objects.filter(pk=m.pk).update(merged_into=s)
    for field, value in profile.items():
        setattr(survivor, field, value)
    merged.merged_into_id, merged.merged_into = s.pk, survivor

    Interaction.objects.create(customer=s, kind=InteractionKind.NOTE, occurred_at=now, summary=_merge_note(m.pk),
                               ref_type=MERGE_REF_TYPE, ref_id=merge.pk, created_by=actor.user)
    DuplicateCandidate.objects.filter(left_id=min(s.pk, m.pk), right_id=max(s.pk, m.pk)).update(
        status=CandidateStatus.MERGED, decided_by=actor.user, decided_at=now)

    merge.moved = moved
    # Later apps (points, messages…) move their own rows here and add their ids to ``moved``, in this transaction.
    events.emit("customers_merged", survivor=survivor, merged=merged, merge=merge, moved=merge.moved)
    merge.before = before
    merge.save(update_fields=["moved", "before"])

    changed = [field for field in ("name", "gender", "stage", "joined_at", "home_unit_id") if profile[field] != getattr(s, field)]
    if added_tags:
        changed.append("tags")
    audit.record(actor=actor, action="customer.merge", obj=s,
                 fields=[*changed, *(f"moved.{table}" for table, ids in merge.moved.items() if ids)])
    audit.record(actor=actor, action="customer.merged_into", obj=m, fields=["merged_into"])
    return merge


@transaction.atomic
def unmerge(*, actor: Actor, merge: Merge) -> None:
    """Undo a merge: the moved rows go back, the survivor's profile fields (as they were before the merge, edits made
    since included) and primaries are restored, the merged record shows again, and the pair is marked "not the same
    person" so the next dedupe run leaves it alone. Merges are undone last first."""
    locked = Merge.objects.select_for_update().filter(pk=merge.pk).first()
    if locked is None:
        raise ValidationError(_("This merge no longer exists."))
    if locked.undone_at is not None:
        raise ValidationError(_("This merge has already been undone."))
    customers = {c.pk: c for c in Customer.objects.select_for_update()
                 .filter(pk__in=[locked.survivor_id, locked.merged_id]).order_by("pk")}
    s, m = customers[locked.survivor_id], customers[locked.merged_id]
    if s.merged_into_id is not None:
        raise ValidationError(_("Customer #%(id)s has since been merged into customer #%(into)s: undo the later merge first.")
                              % {"id": s.pk, "into": s.merged_into_id})
    if m.merged_into_id != s.pk:
        raise ValidationError(_("Customer #%(id)s is no longer merged into customer #%(into)s.") % {"id": m.pk, "into": s.pk})
    # A later merge into the survivor recorded the profile this merge made; undoing this one first would restore
    # a profile that the later undo then overwrites again.
    later = Merge.objects.filter(Q(survivor=s) | Q(merged=s), undone_at__isnull=True, pk__gt=locked.pk).order_by("pk").first()
    if later is not None:
        raise ValidationError(_("Customer #%(id)s took part in a later merge (#%(merge)s): undo the later merge first.")
                              % {"id": s.pk, "merge": later.pk})
    now = timezone.now()
    moved, before = locked.moved, locked.before

    events.emit("customers_unmerged", survivor=s, merged=m, merge=locked, moved=moved)

    _move_back_with_primaries(ContactPoint, s, m, moved.get("contacts", []), group="kind",
                              survivor_primaries=before.get("primary_contact_ids", []),
                              merged_primaries=before.get("merged_primary_contact_ids", []))
    _move_back_with_primaries(Address, s, m, moved.get("addresses", []), group=None,
                              survivor_primaries=[pk for pk in [before.get("primary_address_id")] if pk],
                              merged_primaries=[pk for pk in [before.get("merged_primary_address_id")] if pk])
    for table, model in (("anniversaries", Anniversary), ("preferences", Preference), ("interactions", Interaction),
                         ("memberships", Membership), ("consents", Consent), ("orders", Order),
                         ("source_records", SourceRecord)):
        for chunk in _chunks(moved.get(table, [])):
            model.objects.filter(customer=s, pk__in=chunk).update(customer=m)
    for chunk in _chunks(before.get("source_records_original_filled", [])):
        SourceRecord.objects.filter(pk__in=chunk, original_customer=m).update(original_customer=None)
    _keep_memberships_of_orders(s)

    if before.get("added_tag_ids"):
        Customer.tags.through.objects.filter(customer_id=s.pk, tag_id__in=before["added_tag_ids"]).delete()
    Customer.objects.filter(pk=s.pk).update(
        name=before["name"], gender=before["gender"], stage=before["stage"],
        stage_set_by_staff=before.get("stage_set_by_staff", False), joined_at=dt.datetime.fromisoformat(before["joined_at"]), home_unit_id=before["home_unit_id"],
        updated_at=dt.datetime.fromisoformat(before["updated_at"]),
    )
    Customer.objects.filter(pk=m.pk).update(merged_into=None)
    Interaction.objects.filter(customer=s, ref_type=MERGE_REF_TYPE, ref_id=locked.pk).delete()

    # A manager who undoes a merge has said these are two people: keep that decision for the next dedupe run.
    left, right = min(s.pk, m.pk), max(s.pk, m.pk)
    decided = DuplicateCandidate.objects.filter(left_id=left, right_id=right).update(
        status=CandidateStatus.NOT_SAME, decided_by=actor.user, decided_at=now)
    if not decided:
        DuplicateCandidate.objects.create(left_id=left, right_id=right, match_probability=locked.match_probability or 0.0,
                                          match_weight=0.0, status=CandidateStatus.NOT_SAME, decided_by=actor.user,
                                          decided_at=now)

    Merge.objects.filter(pk=locked.pk).update(undone_at=now, undone_by=actor.user)
    merge.undone_at, merge.undone_by = now, actor.user
    restored = [field for field in ("name", "gender", "stage", "home_unit_id") if before[field] != getattr(s, field)]
    if dt.datetime.fromisoformat(before["joined_at"]) != s.joined_at:
        restored.append("joined_at")
    if before.get("added_tag_ids"):
        restored.append("tags")
    audit.record(actor=actor, action="customer.unmerge", obj=s,
                 fields=[*restored, *(f"moved.{table}" for table, ids in moved.items() if ids)])
    audit.record(actor=actor, action="customer.unmerged", obj=m, fields=["merged_into"])


# --- helpers -------------------------------------------------------------------------------------------------------

def _stage_rank(stage: str) -> int:
    return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else -1


def _merge_note(merged_id: int) -> str:
    return _("Merged with customer #%(id)s") % {"id": merged_id}


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


def _move(rows, survivor: Customer) -> list[int]:
    """Move a queryset's rows to the survivor in one UPDATE; their ids first (the customer rows are locked, so on
    PostgreSQL no row can start pointing at the merged record in between)."""
    ids = sorted(rows.order_by().values_list("id", flat=True))
    if ids:
        rows.update(customer=survivor)
    return ids


def _anniversaries_survivor_lacks(survivor: Customer) -> Q:
    """Birthday and wedding day when the survivor has none of that kind; other dates unless the survivor has the
    same one."""
    theirs = Anniversary.objects.filter(customer=survivor)
    named = ~Q(kind=AnniversaryKind.OTHER) & ~Q(kind__in=theirs.exclude(kind=AnniversaryKind.OTHER).values("kind"))
    same_other = Exists(theirs.filter(kind=AnniversaryKind.OTHER, label=OuterRef("label"), month=OuterRef("month"),
                                      day=OuterRef("day"), is_lunar=OuterRef("is_lunar")))
    return named | (Q(kind=AnniversaryKind.OTHER) & ~same_other)


class _Moved:
    def __init__(self, moved: list[int], survivor_primaries: list[int], merged_primaries: list[int]):
        self.moved, self.survivor_primaries, self.merged_primaries = moved, survivor_primaries, merged_primaries


def _move_with_primaries(model, survivor: Customer, merged: Customer, merged_is_newer: bool, *, group: str | None,
                         key: tuple[str, ...]) -> _Moved:
    """Move the merged record's rows the survivor lacks (same ``key`` = same row), keeping one primary per ``group``:
    the more recently updated record's primary, else the other's. A handful of rows per customer, read once."""
    fields = ["id", "customer_id", "is_primary", *key] + ([group] if group and group not in key else [])
    rows = list(model.objects.filter(customer_id__in=[survivor.pk, merged.pk]).order_by("id").values(*fields))
    ours = [r for r in rows if r["customer_id"] == survivor.pk]
    theirs = [r for r in rows if r["customer_id"] == merged.pk]
    ours_by_key = {tuple(r[f] for f in key): r for r in ours}
    to_move = [r for r in theirs if tuple(r[f] for f in key) not in ours_by_key]
    moving_by_key = {tuple(r[f] for f in key): r for r in to_move}

    def primary_of(records, group_value):
        return next((r for r in records if r["is_primary"] and (group is None or r[group] == group_value)), None)

    target: set[int] = set()
    for group_value in {r[group] for r in rows} if group else {None}:
        newer, older = (theirs, ours) if merged_is_newer else (ours, theirs)
        winner = primary_of(newer, group_value) or primary_of(older, group_value)
        if winner is None:
            continue
        winner_key = tuple(winner[f] for f in key)
        # The winning value lives on in the survivor's own row with that value, or in the row that moves over.
        holder = ours_by_key.get(winner_key) or moving_by_key[winner_key]
        target.add(holder["id"])

    survivor_primaries = sorted(r["id"] for r in ours if r["is_primary"])
    demote = [pk for pk in survivor_primaries if pk not in target]
    plain = [r["id"] for r in to_move if r["id"] not in target]
    promote = sorted(target - set(survivor_primaries))
    # Demote first, promote last: the one-primary constraints hold after every statement.
    if demote:
        model.objects.filter(pk__in=demote).update(is_primary=False)
    if plain:
        model.objects.filter(pk__in=plain).update(customer=survivor, is_primary=False)
    if promote:
        model.objects.filter(pk__in=promote).update(customer=survivor, is_primary=True)
    return _Moved(moved=sorted(r["id"] for r in to_move), survivor_primaries=survivor_primaries,
                  merged_primaries=sorted(r["id"] for r in to_move if r["is_primary"]))


def _move_back_with_primaries(model, survivor: Customer, merged: Customer, moved: list[int], *, group: str | None,
                              survivor_primaries: list[int], merged_primaries: list[int]) -> None:
    """Undo ``_move_with_primaries``: the moved rows go back with their primary flags; the survivor's primary per
    group is its primary from before the merge when that row still exists, else a primary set after the merge."""
    fields = ["id", "is_primary"] + ([group] if group else [])
    current = {r["id"]: r for r in model.objects.filter(customer=survivor).order_by("id").values(*fields)}
    moved_set = set(moved) & set(current)
    staying = {pk: r for pk, r in current.items() if pk not in moved_set}
    target: set[int] = set()
    for group_value in {r[group] for r in staying.values()} if group else {None}:
        in_group = {pk: r for pk, r in staying.items() if group is None or r[group] == group_value}
        restored = [pk for pk in survivor_primaries if pk in in_group]
        if restored:
            target.add(restored[0])
        else:
            target.update(pk for pk, r in in_group.items() if r["is_primary"])
    demote = [pk for pk, r in current.items() if r["is_primary"] and pk not in target and pk not in moved_set]
    back_primary = sorted(moved_set & set(merged_primaries))
    back_plain = sorted(moved_set - set(merged_primaries))
    promote = [pk for pk in target if not current[pk]["is_primary"]]
    if demote:
        model.objects.filter(pk__in=demote).update(is_primary=False)
    for chunk in _chunks(back_plain):
        model.objects.filter(pk__in=chunk).update(customer=merged, is_primary=False)
    if back_primary:
        model.objects.filter(pk__in=back_primary).update(customer=merged, is_primary=True)
    if promote:
        model.objects.filter(pk__in=promote).update(is_primary=True)


def _keep_memberships_of_orders(survivor: Customer) -> None:
    """After an undo the survivor keeps its membership of every unit it bought at after the merge (that membership
    may have been one of the merged record's, gone back with it): the unit-scope rule stays true."""
    missing = list(Order.objects.filter(customer=survivor)
                   .exclude(unit_id__in=Membership.objects.filter(customer=survivor).values("unit_id"))
                   .values("unit_id").annotate(first=Min("ordered_at")).values_list("unit_id", "first"))
    if missing:
        Membership.objects.bulk_create([Membership(customer=survivor, unit_id=unit_id, joined_at=first, source="purchase")
                                        for unit_id, first in missing])
