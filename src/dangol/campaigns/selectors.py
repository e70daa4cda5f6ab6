"""Reads of segments, campaigns and automations, always within the user's business units.

Who is in a segment: live customers (not merged, not erased, processing not suspended) who are members of the
segment's business unit (or anyone in the group for a group-wide segment), further limited to the business units
of the user who asks, and matching the rules (dynamic) or listed (static) — one query.
"""
from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection, transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils.translation import gettext as _

from dangol.core.models import BusinessUnit, User
from dangol.core.selectors import units_for
from dangol.customers.models import Customer, Membership
from dangol.customers.selectors import customers_for

from . import facts as segment_facts
from . import rules as segment_rules
from .models import Automation, Campaign, Segment, SegmentKind, SegmentMember


def reachable_customers() -> QuerySet[Customer]:
    """Customers a segment may ever contain."""
    return Customer.objects.filter(merged_into__isnull=True, erased_at__isnull=True, processing_suspended=False)


def segments_for(user: User) -> QuerySet[Segment]:
    if user.sees_all_units:
        return Segment.objects.all()
    return Segment.objects.filter(unit__in=units_for(user))


def campaigns_for(user: User) -> QuerySet[Campaign]:
    qs = Campaign.objects.select_related("segment", "unit", "created_by", "approved_by")
    if user.sees_all_units:
        return qs
    return qs.filter(unit__in=units_for(user))


def automations_for(user: User) -> QuerySet[Automation]:
    qs = Automation.objects.select_related("unit", "offer")
    if user.sees_all_units:
        return qs
    return qs.filter(unit__in=units_for(user))


def _scoped(unit: BusinessUnit | None, user: User | None) -> QuerySet[Customer]:
    qs = customers_for(user) if user is not None else Customer.objects.filter(merged_into__isnull=True)
    qs = qs.filter(erased_at__isnull=True, processing_suspended=False)
    if unit is not None:
        qs = qs.filter(Exists(Membership.objects.filter(customer_id=OuterRef("pk"), unit_id=unit.pk)))
    return qs


def customers_matching(tree: dict, *, unit: BusinessUnit | None, user: User | None = None,
                       now: dt.datetime | None = None) -> QuerySet[Customer]:
    """The customers of a validated rule tree (``rules.clean_tree``)."""
    return _scoped(unit, user).filter(segment_rules.compile_tree(tree, now=now))


def segment_customers(segment: Segment, *, user: User | None = None, now: dt.datetime | None = None) -> QuerySet[Customer]:
    if segment.kind == SegmentKind.STATIC:
        return _scoped(segment.unit, user).filter(
            Exists(SegmentMember.objects.filter(segment_id=segment.pk, customer_id=OuterRef("pk"))))
    tree = segment.rules or {"op": "and", "rules": []}
    return customers_matching(tree, unit=segment.unit, user=user, now=now)


def count_matching(tree: dict, *, unit: BusinessUnit | None, user: User | None = None, now: dt.datetime | None = None) -> int:
    """The live count. Trees made only of rules that ``facts`` answers are counted on the one-row-per-customer facts
    table (after refreshing the rows marked since the last refresh); others, or while more than
    ``facts.FAST_COUNT_MAX_DIRTY`` rows wait for a refresh, on the source tables — the same answer either way.

    On PostgreSQL a statement timeout (``DANGOL_SEGMENT_COUNT_TIMEOUT_MS``, 15 s) keeps a heavy tree typed into the
    builder from holding the database: it then raises ValidationError. JIT compilation is off for the count: a tree
    of semi-joins is costed high enough to trigger it, and compiling took ~380 ms of a 2.1 s count on the
    1M-customer benchmark (bench/campaigns_bench.py), more than it saved."""
    qs = _facts_matching(tree, unit=unit, user=user, now=now)
    if qs is None:
        qs = customers_matching(tree, unit=unit, user=user, now=now)
    qs = qs.order_by()
    if connection.vendor != "postgresql":
        return qs.count()
    timeout = int(getattr(settings, "DANGOL_SEGMENT_COUNT_TIMEOUT_MS", 15_000))
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true), set_config('jit', 'off', true)",
                               [str(timeout)])
            return qs.count()
    except OperationalError:
        raise ValidationError(_("Counting took longer than %(s)s seconds: make the rules narrower.") % {"s": timeout // 1000})


def _facts_matching(tree: dict, *, unit: BusinessUnit | None, user: User | None, now: dt.datetime | None):
    condition = segment_facts.compile_tree(tree, now=now)
    if condition is None or segment_facts.pending_at_least(segment_facts.FAST_COUNT_MAX_DIRTY):
        return None
    segment_facts.refresh()
    unit_ids = None if user is None or user.sees_all_units else list(units_for(user).values_list("pk", flat=True))
    return segment_facts.scoped(unit=unit, unit_ids=unit_ids).filter(condition)


def segment_sql(segment: Segment, *, user: User | None = None, now: dt.datetime | None = None) -> tuple[str, tuple]:
    """The SQL of the segment's customer ids (column ``cid``) and its parameters (for set-based INSERT … SELECT)."""
    qs = segment_customers(segment, user=user, now=now).order_by().annotate(cid=F("pk")).values("cid")
    return qs.query.sql_with_params()


