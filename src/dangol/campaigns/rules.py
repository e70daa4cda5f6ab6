"""Segment rules: a JSON tree of AND/OR groups and rules, validated against a whitelist and compiled to one query.

A tree is ``{"op": "and"|"or", "rules": [node, ...]}``; a rule is ``{"field": ..., "operator": ..., "value": ...}``
with ``days`` and ``unit`` where the field takes them. Everything a user sends is data: the field and the operator
are looked up in ``FIELDS`` (anything else is refused), values are converted to the field's type and checked, and the
compiled condition is a Django ``Q`` whose values the database driver binds as parameters — a value is never part of
the SQL text.

Every rule becomes a condition on the customer row: a column of its own, or an ``EXISTS`` / ``NOT EXISTS`` /
``IN`` over another table correlated on the customer (PostgreSQL plans these as semi- and anti-joins), so a whole tree
is one query however deep it nests, and no customer is ever filtered in Python.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable

from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dangol.analytics.models import CustomerMetrics, RfmSegment
from dangol.core.models import BusinessUnit
from dangol.customers.models import (Address, Anniversary, AnniversaryKind, Channel, Consent, Customer, Gender,
                                     Membership, Purpose, Stage)
from dangol.loyalty import selectors as loyalty_selectors
from dangol.loyalty.models import Account, Tier
from dangol.sales.models import Category, Order, OrderKind, OrderLine, Product

MAX_DEPTH = 4
MAX_RULES = 40
MAX_LIST = 200
MAX_TEXT = 60
MAX_DAYS = 3660
MAX_AMOUNT = 10**12


@dataclass(frozen=True)
class Field:
    """One kind of rule: what it is called, which operators it takes, what its value is and how it compiles."""

    key: str
    label: Any
    group: Any
    operators: tuple[str, ...]
    value: str  # int | money | ratio | choices | text_list | unit | consent
    compile: Callable
    days: str = ""  # "" (no window), "optional" or "required"
    unit: bool = False  # takes an optional business unit
    choices: Callable | None = None  # () -> [(value, label)] for "choices" / "consent"
    help: Any = ""


OPERATOR_LABELS = {
    "gte": _("at least"), "lte": _("at most"), "eq": _("is"), "in": _("is one of"), "not_in": _("is none of"),
    "any": _("any of"), "none": _("none of"), "granted": _("granted"), "not_granted": _("not granted"),
}


@dataclass
class Context:
    now: dt.datetime


# --- compilers (one per field) -----------------------------------------------------------------------------------------

def _since(ctx: Context, days: int | None) -> dt.datetime | None:
    return ctx.now - dt.timedelta(days=days) if days else None


def _sales(ctx: Context, days: int | None, unit_id: int | None):
    """Sale orders of the customer (flagged imports left out, as analytics does), optionally in a window and a unit."""
    qs = Order.objects.filter(customer_id=OuterRef("pk"), kind=OrderKind.SALE, needs_review=False)
    if days:
        qs = qs.filter(ordered_at__gte=_since(ctx, days))
    if unit_id:
        qs = qs.filter(unit_id=unit_id)
    return qs


def _age(rule, ctx):
    # Age N or more ⇔ born on or before today N years ago: compare (year, month, day) of the birthday.
    today = timezone.localdate(ctx.now)
    years = rule["value"]
    year = today.year - years - (1 if rule["operator"] == "lte" else 0)
    on_or_before = Q(year__lt=year) | Q(year=year, month__lt=today.month) | Q(year=year, month=today.month, day__lte=today.day)
    births = Anniversary.objects.filter(customer_id=OuterRef("pk"), kind=AnniversaryKind.BIRTHDAY, year__isnull=False)
    if rule["operator"] == "gte":
        return Q(Exists(births.filter(on_or_before)))
    # At most N: born after today N+1 years ago (a known birth year is required).
    return Q(Exists(births.exclude(on_or_before)))


def _column_in(column):
    def compile_(rule, ctx):
        condition = Q(**{f"{column}__in": rule["value"]})
        return condition if rule["operator"] in ("in", "eq") else ~condition
    return compile_


def _address(column):
    def compile_(rule, ctx):
        exists = Exists(Address.objects.filter(customer_id=OuterRef("pk"), is_primary=True, **{f"{column}__in": rule["value"]}))
        return Q(exists) if rule["operator"] == "in" else ~Q(exists)
    return compile_


def _tags(rule, ctx):
    through = Customer.tags.through
    exists = Exists(through.objects.filter(customer_id=OuterRef("pk"), tag__name__in=rule["value"]))
    return Q(exists) if rule["operator"] == "any" else ~Q(exists)


def _joined_days(rule, ctx):
    moment = ctx.now - dt.timedelta(days=rule["value"])
    # "joined at least N days ago" / "joined at most N days ago (recently)"
    return Q(joined_at__lte=moment) if rule["operator"] == "gte" else Q(joined_at__gte=moment)


def _member_of(rule, ctx):
    exists = Exists(Membership.objects.filter(customer_id=OuterRef("pk"), unit__code__in=rule["value"]))
    return Q(exists) if rule["operator"] == "in" else ~Q(exists)


def _consent(rule, ctx):
    channel, purpose = rule["value"].split(":")
    # Granted now ⇔ a granting event with no later event of the same channel and purpose (a withdrawal at the same
    # instant wins, as on the 360° page).
    later = Consent.objects.filter(customer_id=OuterRef("customer_id"), channel=channel, purpose=purpose).filter(
        Q(at__gt=OuterRef("at")) | Q(at=OuterRef("at"), granted=False) | Q(at=OuterRef("at"), id__gt=OuterRef("id")))
    in_force = Consent.objects.filter(customer_id=OuterRef("pk"), channel=channel, purpose=purpose, granted=True) \
        .filter(~Exists(later))
    return Q(Exists(in_force)) if rule["operator"] == "granted" else ~Q(Exists(in_force))


def _bought(path):
    def compile_(rule, ctx):
        lines = OrderLine.objects.filter(order__customer_id=OuterRef("pk"), order__kind=OrderKind.SALE,
                                         order__needs_review=False, **{f"{path}__in": rule["value"]})
        if rule.get("days"):
            lines = lines.filter(order__ordered_at__gte=_since(ctx, rule["days"]))
        return Q(Exists(lines)) if rule["operator"] == "any" else ~Q(Exists(lines))
    return compile_


def _spent(rule, ctx):
    # Net spend (refunds count against it) at a unit, in a window: ≥ X as an IN over grouped orders, < X as its negation
    # (a correlated NOT EXISTS, so that PostgreSQL never builds a huge hashed NOT IN list).
    orders = Order.objects.filter(customer_id=OuterRef("pk"), needs_review=False)
    if rule.get("days"):
        orders = orders.filter(ordered_at__gte=_since(ctx, rule["days"]))
    if rule.get("unit_id"):
        orders = orders.filter(unit_id=rule["unit_id"])
    reaching = orders.values("customer_id").annotate(spent=Sum("total")).filter(spent__gte=rule["value"])
    return Q(Exists(reaching)) if rule["operator"] == "gte" else ~Q(Exists(reaching))


def _days_since_purchase(rule, ctx):
    recent = Exists(_sales(ctx, rule["value"], rule.get("unit_id")))
    # "at least N days since the last purchase" = no purchase in the last N days (customers who never bought count).
    return ~Q(recent) if rule["operator"] == "gte" else Q(recent)


def _visits(rule, ctx):
    orders = _sales(ctx, rule.get("days"), rule.get("unit_id"))
    if rule["operator"] == "gte":
        if rule["value"] <= 0:
            return Q(pk__isnull=False)
        return Q(Exists(orders.values("customer_id").annotate(n=Count("id")).filter(n__gte=rule["value"])))
    return ~Q(Exists(orders.values("customer_id").annotate(n=Count("id")).filter(n__gt=rule["value"])))


def _metric(column):
    def compile_(rule, ctx):
        lookup = "gte" if rule["operator"] == "gte" else "lte"
        return Q(Exists(CustomerMetrics.objects.filter(customer_id=OuterRef("pk"), **{f"{column}__{lookup}": rule["value"]})))
    return compile_


def _rfm(rule, ctx):
    exists = Exists(CustomerMetrics.objects.filter(customer_id=OuterRef("pk"), rfm_segment__in=rule["value"]))
    return Q(exists) if rule["operator"] == "in" else ~Q(exists)


def _points(rule, ctx):
    """The balance that can be spent now (the counter's figure): lots past their expiry count no more."""
    if rule["operator"] == "gte" and rule["value"] <= 0:
        return Q(pk__isnull=False)
    balance = loyalty_selectors.balance_expression(ctx.now)
    if rule["operator"] == "gte":
        return Q(GreaterThanOrEqual(balance, rule["value"]))
    return Q(LessThanOrEqual(balance, rule["value"]))


def _tier(rule, ctx):
    exists = Exists(Account.objects.filter(customer_id=OuterRef("pk"), tier__code__in=rule["value"]))
    return Q(exists) if rule["operator"] == "in" else ~Q(exists)


# --- choices read from the database ------------------------------------------------------------------------------------

def _unit_choices():
    return list(BusinessUnit.objects.filter(is_active=True).values_list("code", "name"))


def _tier_choices():
    return list(Tier.objects.filter(is_active=True).order_by("rank").values_list("code", "name"))


def _category_choices():
    return [(str(pk), f"{name} ({unit or '—'})") for pk, name, unit in
            Category.objects.order_by("unit__name", "name").values_list("pk", "name", "unit__name")]


def _product_choices():
    return [(str(pk), f"{name} ({unit})") for pk, name, unit in
            Product.objects.filter(is_active=True).order_by("unit__name", "name").values_list("pk", "name", "unit__name")[:2000]]


def _consent_choices():
    return [(f"{c}:{p}", f"{cl} · {pl}") for c, cl in Channel.choices for p, pl in Purpose.choices]


PROFILE, CONSENT, PURCHASE, METRICS, LOYALTY = _("Profile"), _("Consent"), _("Purchases"), _("Analysis"), _("Loyalty")

FIELDS: dict[str, Field] = {f.key: f for f in [
    Field("age", _("Age"), PROFILE, ("gte", "lte"), "int", _age, help=_("from the birthday's year; unknown years never match")),
    Field("gender", _("Gender"), PROFILE, ("in", "not_in"), "choices", _column_in("gender"),
          choices=lambda: [(v, lbl) for v, lbl in Gender.choices]),
    Field("sido", _("Province (시/도)"), PROFILE, ("in", "not_in"), "text_list", _address("sido")),
    Field("sigungu", _("District (시/군/구)"), PROFILE, ("in", "not_in"), "text_list", _address("sigungu")),
    Field("tag", _("Tags"), PROFILE, ("any", "none"), "text_list", _tags),
    Field("stage", _("Relationship stage"), PROFILE, ("in", "not_in"), "choices", _column_in("stage"),
          choices=lambda: list(Stage.choices)),
    Field("joined_days", _("Days since joining"), PROFILE, ("gte", "lte"), "int", _joined_days),
    Field("member_of", _("Member of business unit"), PROFILE, ("in", "not_in"), "choices", _member_of, choices=_unit_choices),
    Field("consent", _("Consent"), CONSENT, ("granted", "not_granted"), "consent", _consent, choices=_consent_choices),
    Field("bought_category", _("Bought in category"), PURCHASE, ("any", "none"), "choices", _bought("product__category_id"),
          days="optional", choices=_category_choices),
    Field("bought_product", _("Bought product"), PURCHASE, ("any", "none"), "choices", _bought("product_id"),
          days="optional", choices=_product_choices),
    Field("spent", _("Net spend (KRW)"), PURCHASE, ("gte", "lte"), "money", _spent, days="optional", unit=True),
    Field("days_since_purchase", _("Days since last purchase"), PURCHASE, ("gte", "lte"), "int", _days_since_purchase,
          unit=True, help=_("at least N: no purchase (visit) in the last N days, never-buyers included")),
    Field("visits", _("Number of visits (purchases)"), PURCHASE, ("gte", "lte"), "int", _visits, days="optional", unit=True),
    Field("rfm_segment", _("RFM segment"), METRICS, ("in", "not_in"), "choices", _rfm,
          choices=lambda: list(RfmSegment.choices)),
    Field("clv_12m", _("12-month CLV (KRW)"), METRICS, ("gte", "lte"), "money", _metric("clv_12m")),
    Field("p_alive", _("Probability still active"), METRICS, ("gte", "lte"), "ratio", _metric("p_alive")),
    Field("churn_risk", _("Churn risk"), METRICS, ("gte", "lte"), "ratio", _metric("churn_risk")),
    Field("points", _("Points balance"), LOYALTY, ("gte", "lte"), "int", _points),
    Field("tier", _("Tier"), LOYALTY, ("in", "not_in"), "choices", _tier, choices=_tier_choices),
]}


# --- validation -----------------------------------------------------------------------------------------------------

def _int(raw, *, low=0, high=MAX_AMOUNT, what=_("a whole number")) -> int:
    if isinstance(raw, bool):
        raise ValidationError(_("Enter %(what)s.") % {"what": what})
    try:
        text = str(raw).replace(",", "").strip()
        value = int(text)
    except (TypeError, ValueError):
        raise ValidationError(_("Enter %(what)s.") % {"what": what})
    if not low <= value <= high:
        raise ValidationError(_("Enter a number from %(low)s to %(high)s.") % {"low": low, "high": f"{high:,}"})
    return value


def _ratio(raw) -> float:
    try:
        value = float(str(raw).strip())
    except (TypeError, ValueError):
        raise ValidationError(_("Enter a number from 0 to 1."))
    if not 0.0 <= value <= 1.0:
        raise ValidationError(_("Enter a number from 0 to 1."))
    return value


def _list(raw) -> list[str]:
    if isinstance(raw, str):
        raw = raw.replace("\n", ",").split(",")
    if not isinstance(raw, (list, tuple)):
        raise ValidationError(_("Enter a list of values."))
    values = []
    for item in raw:
        if not isinstance(item, (str, int)) or isinstance(item, bool):
            raise ValidationError(_("Enter a list of values."))
        text = " ".join(str(item).split())
        if text and text not in values:
            values.append(text[:MAX_TEXT])
    if not values:
        raise ValidationError(_("Enter at least one value."))
    if len(values) > MAX_LIST:
        raise ValidationError(_("Enter at most %(n)s values.") % {"n": MAX_LIST})
    return values


def clean_rule(raw: dict) -> dict:
    if not isinstance(raw, dict):
        raise ValidationError(_("A rule must be an object."))
    key = raw.get("field")
    spec = FIELDS.get(key) if isinstance(key, str) else None
    if spec is None:
        raise ValidationError(_("Unknown field."))
    operator = raw.get("operator")
    if operator not in spec.operators:
        raise ValidationError(_("Unknown operator for %(field)s.") % {"field": spec.label})
    value = raw.get("value")
    if spec.value == "int":
        value = _int(value, high=150 if key == "age" else MAX_AMOUNT)
    elif spec.value == "money":
        value = _int(value, what=_("an amount in KRW"))
    elif spec.value == "ratio":
        value = _ratio(value)
    elif spec.value == "text_list":
        value = _list(value)
    elif spec.value in ("choices", "consent"):
        allowed = {str(v) for v, _label in spec.choices()}
        value = _list(value) if spec.value == "choices" else value
        if spec.value == "consent":
            if not isinstance(value, str) or value not in allowed:
                raise ValidationError(_("Choose a channel and purpose."))
        else:
            bad = [v for v in value if v not in allowed]
            if bad:
                raise ValidationError(_("Unknown choice for %(field)s.") % {"field": spec.label})
            if key in ("bought_category", "bought_product"):
                value = [int(v) for v in value]
    cleaned: dict = {"field": key, "operator": operator, "value": value}
    days = raw.get("days")
    if spec.days and days not in (None, "", 0, "0"):
        cleaned["days"] = _int(days, low=1, high=MAX_DAYS, what=_("a number of days"))
    elif spec.days == "required":
        raise ValidationError(_("Enter a number of days."))
    unit = raw.get("unit")
    if spec.unit and unit not in (None, ""):
        if not isinstance(unit, str):
            raise ValidationError(_("Unknown business unit."))
        unit_id = BusinessUnit.objects.filter(code=unit).values_list("pk", flat=True).first()
        if unit_id is None:
            raise ValidationError(_("Unknown business unit."))
        cleaned["unit"] = unit
    return cleaned


@dataclass
class Problems:
    """Validation errors by node path ("0", "0.2", "0.2.1"), for the builder to show next to each rule."""

    by_path: dict[str, str] = field(default_factory=dict)


def clean_tree(raw, *, problems: Problems | None = None, path: str = "0", depth: int = 1, counter: list | None = None) -> dict:
    """A validated copy of the tree. With ``problems``, bad rules are reported there (and left out) instead of raising."""
    counter = counter if counter is not None else [0]
    if not isinstance(raw, dict) or "rules" not in raw:
        raise ValidationError(_("A segment needs a group of rules."))
    op = raw.get("op", "and")
    if op not in ("and", "or"):
        raise ValidationError(_("A group combines its rules with AND or OR."))
    if depth > MAX_DEPTH:
        raise ValidationError(_("Groups nest at most %(n)s deep.") % {"n": MAX_DEPTH})
    children = raw.get("rules")
    if not isinstance(children, list):
        raise ValidationError(_("A segment needs a group of rules."))
    out = []
    for index, child in enumerate(children):
        child_path = f"{path}.{index}"
        counter[0] += 1
        if counter[0] > MAX_RULES:
            raise ValidationError(_("A segment has at most %(n)s rules.") % {"n": MAX_RULES})
        try:
            if isinstance(child, dict) and "rules" in child:
                out.append(clean_tree(child, problems=problems, path=child_path, depth=depth + 1, counter=counter))
            else:
                out.append(clean_rule(child))
        except ValidationError as exc:
            if problems is None:
                raise
            problems.by_path[child_path] = " ".join(exc.messages)
    return {"op": op, "rules": out}


# --- compilation ----------------------------------------------------------------------------------------------------

def compile_tree(tree: dict, *, now: dt.datetime | None = None) -> Q:
    """The Q of a validated tree (``clean_tree``). An empty group matches everyone (AND) or no one (OR)."""
    ctx = Context(now=now or timezone.now())
    units = dict(BusinessUnit.objects.values_list("code", "pk"))
    return _compile(tree, ctx, units)


def combine(op: str, parts: list[Q]) -> Q:
    """The conditions of a group joined by its operator; an empty group matches everyone (AND) or no one (OR)."""
    if not parts:
        return Q() if op == "and" else Q(pk__in=[])
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part if op == "and" else combined | part
    return combined


def _compile(node: dict, ctx: Context, units: dict) -> Q:
    if "rules" in node:
        return combine(node["op"], [_compile(child, ctx, units) for child in node["rules"]])
    rule = dict(node)
    if rule.get("unit"):
        rule["unit_id"] = units.get(rule["unit"])
    return FIELDS[rule["field"]].compile(rule, ctx)


def describe(tree: dict) -> str:
    """The tree in words, e.g. for the segment list: (Tier is one of vip AND District is one of 강남구)."""
    def words(node) -> str:
        if "rules" in node:
            joiner = " AND " if node["op"] == "and" else " OR "
            return "(" + joiner.join(words(c) for c in node["rules"]) + ")" if node["rules"] else "(everyone)"
        spec = FIELDS[node["field"]]
        value = node["value"]
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        extra = f" / {node['days']}d" if node.get("days") else ""
        extra += f" @ {node['unit']}" if node.get("unit") else ""
        return f"{spec.label} {OPERATOR_LABELS[node['operator']]} {shown}{extra}"
    return words(tree)
