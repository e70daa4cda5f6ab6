"""Campaigns: draft, approve, preview, send (set-based), and the reproducible holdout and variant split.

A run selects the segment's customers in SQL, splits them with a hash of (campaign id, customer id) — the same
customer always lands in the same group of the same campaign — writes the recipients (COPY), issues one coupon per
treated recipient with a unique code (``loyalty.wallet.issue_coupons``), computes the personalisation values for all
of them in a few queries, renders the sandboxed template and hands the rows to ``messaging.send_bulk``, which decides
compliance in SQL and writes the outbox. The run is unique per (campaign, occurrence): a repeated task does nothing.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from dangol.core import audit, bulk
from dangol.core.audit import Actor
from dangol.core.bulk import NullableInts, Rows
from dangol.core.masking import mask_name
from dangol.core.models import BusinessUnit, Role, User
from dangol.customers.models import Channel, Customer, Membership
from dangol.loyalty.models import Coupon, CouponKind, CouponSource, CouponTemplate
from dangol.loyalty.wallet import issue_coupons
from dangol.messaging import services as messaging

from . import selectors, templating
from .models import Campaign, CampaignRun, CampaignStatus, Offer, OfferKind, Recipient, Recurrence, Segment, Variant
from .segments import check_unit

logger = logging.getLogger("dangol.campaigns")
MAX_VARIANTS = 4
SEND_CHUNK = 20_000
PREVIEW_LIST_LIMIT = 20_000


# --- the reproducible split ---------------------------------------------------------------------------------------------

def _mix(seed: int, ids: np.ndarray) -> np.ndarray:
    """splitmix64 of (seed, id), vectorised: a well-spread 64-bit hash that is the same on every run and machine."""
    with np.errstate(over="ignore"):
        x = ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def holdout_mask(campaign_id: int, customer_ids: np.ndarray, pct: int, *, salt: int = 0) -> np.ndarray:
    """True for the customers kept back: about ``pct`` % of them, the same ones whenever it is asked."""
    buckets = _mix(campaign_id * 1_000_003 + salt * 7919 + 17, np.asarray(customer_ids, dtype=np.int64)) % np.uint64(10_000)
    return buckets < np.uint64(int(pct) * 100)


def variant_of(campaign_id: int, customer_ids: np.ndarray, codes: list[str], weights: list[int], *, salt: int = 0) -> np.ndarray:
    """The variant code of each customer, split by the weights (per cent), reproducibly and independently of the
    holdout (another seed)."""
    buckets = (_mix(campaign_id * 1_000_003 + salt * 7919 + 99_991, np.asarray(customer_ids, dtype=np.int64))
               % np.uint64(10_000)).astype(np.int64)
    edges = np.cumsum(np.asarray(weights, dtype=np.int64)) * 10_000 // max(sum(weights), 1)
    index = np.searchsorted(edges, buckets, side="right")
    return np.asarray(codes)[np.minimum(index, len(codes) - 1)]


# --- drafting and approval --------------------------------------------------------------------------------------------

@dataclass
class VariantInput:
    body: str
    subject: str = ""
    weight: int = 100
    code: str = "A"


@dataclass
class OfferInput:
    kind: str  # "percent" | "amount"
    value: int
    valid_days: int = 14
    min_spend_krw: int = 0
    units: tuple[BusinessUnit, ...] = ()  # where the coupon is good; none: where the campaign is sent from


def may_approve(user: User) -> bool:
    return bool(user and (user.sees_all_units or user.role == Role.MANAGER))


def _clean_variants(variants: list[VariantInput], channel: str) -> list[VariantInput]:
    if not variants:
        raise ValidationError({"body": [_("Write the message.")]})
    if len(variants) > MAX_VARIANTS:
        raise ValidationError({"body": [_("At most %(n)s variants.") % {"n": MAX_VARIANTS}]})
    out = []
    for index, variant in enumerate(variants):
        body = (variant.body or "").strip()
        if not body:
            raise ValidationError({"body": [_("Write the message of variant %(code)s.") % {"code": "ABCD"[index]}]})
        try:
            templating.variables_in(body)
            templating.variables_in(variant.subject or "")
        except ValidationError as exc:
            raise ValidationError({"body": exc.messages})
        weight = int(variant.weight or 0)
        if not 1 <= weight <= 100:
            raise ValidationError({"body": [_("A variant's share is 1 to 100 %.")]})
        out.append(VariantInput(body=body, subject=(variant.subject or "").strip()[:120], weight=weight, code="ABCD"[index]))
    if len(out) > 1 and sum(v.weight for v in out) != 100:
        raise ValidationError({"body": [_("The variants' shares add up to 100 %.")]})
    if channel == Channel.EMAIL and any(not v.subject for v in out):
        raise ValidationError({"subject": [_("An email needs a subject.")]})
    return out


def _clean_offer(offer: OfferInput | None) -> OfferInput | None:
    if offer is None or not offer.kind:
        return None
    if offer.kind not in (OfferKind.PERCENT, OfferKind.AMOUNT):
        raise ValidationError({"offer_kind": [_("Choose percent or amount off.")]})
    try:
        value, days, spend = int(offer.value), int(offer.valid_days), int(offer.min_spend_krw or 0)
    except (TypeError, ValueError):
        raise ValidationError({"offer_value": [_("Enter whole numbers for the offer.")]})
    if offer.kind == OfferKind.PERCENT and not 1 <= value <= 100:
        raise ValidationError({"offer_value": [_("A percentage is 1 to 100.")]})
    if offer.kind == OfferKind.AMOUNT and not 1 <= value <= 10_000_000:
        raise ValidationError({"offer_value": [_("An amount is 1 to 10,000,000 KRW.")]})
    if not 1 <= days <= 365:
        raise ValidationError({"offer_valid_days": [_("A coupon is valid 1 to 365 days.")]})
    if spend < 0:
        raise ValidationError({"offer_min_spend": [_("The minimum spend cannot be negative.")]})
    units = tuple(offer.units or ())
    if any(not isinstance(u, BusinessUnit) for u in units):
        raise ValidationError({"offer_units": [_("Choose the business units where the coupon is good.")]})
    return OfferInput(kind=offer.kind, value=value, valid_days=days, min_spend_krw=spend,
                      units=tuple({u.pk: u for u in units}.values()))


@transaction.atomic
def create_campaign(*, actor: Actor, name: str, segment: Segment, channel: str, variants: list[VariantInput],
                    kind: str = "ad", unit: BusinessUnit | None = None, holdout_pct: int = 10, offer: OfferInput | None = None,
                    send_at: dt.datetime | None = None, recurrence: str = "", attribution_days: int = 14,
                    image=None) -> Campaign:
    """A draft (staff may draft; a manager approves). ``image`` (a ``messaging.images`` picture) sends an SMS
    campaign as MMS."""
    user = actor.user
    check_unit(user, unit)
    if not selectors.segments_for(user).filter(pk=segment.pk).exists():
        raise ValidationError({"segment": [_("Choose one of your segments.")]})
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({"name": [_("Give the campaign a name.")]})
    if channel not in Channel.values:
        raise ValidationError({"channel": [_("Choose a channel.")]})
    if image is not None and channel != Channel.SMS:
        raise ValidationError({"image": [_("Only a text message (MMS) carries a picture.")]})
    if kind not in ("ad", "info"):
        raise ValidationError({"kind": [_("Choose advertising or information.")]})
    try:
        holdout_pct, attribution_days = int(holdout_pct), int(attribution_days)
    except (TypeError, ValueError):
        raise ValidationError({"holdout_pct": [_("Enter whole numbers.")]})
    if not 0 <= holdout_pct <= 90:
        raise ValidationError({"holdout_pct": [_("The holdout is 0 to 90 percent of the segment.")]})
    if not 1 <= attribution_days <= 365:
        raise ValidationError({"attribution_days": [_("The attribution window is 1 to 365 days.")]})
    if recurrence not in Recurrence.values:
        raise ValidationError({"recurrence": [_("Choose how often it repeats.")]})
    if recurrence and send_at is None:
        raise ValidationError({"send_at": [_("A repeating campaign needs its first date and time.")]})
    variants = _clean_variants(variants, channel)
    offer = _clean_offer(offer)
    if offer:
        offer_units = offer.units or ((unit,) if unit is not None else ())
        for offer_unit in offer_units:
            try:
                check_unit(user, offer_unit)
            except ValidationError as exc:
                raise ValidationError({"offer_units": exc.message_dict["unit"]}) from None
    campaign = Campaign.objects.create(
        name=name[:120], unit=unit, segment=segment, channel=channel, kind=kind, holdout_pct=holdout_pct,
        send_at=send_at, recurrence=recurrence, attribution_days=attribution_days, created_by=user, image=image,
        offer=create_offer(offer, offer_units) if offer else None)
    Variant.objects.bulk_create([Variant(campaign=campaign, code=v.code, subject=v.subject, body=v.body, weight=v.weight)
                                 for v in variants])
    audit.record(actor=actor, action="campaign.create", obj=campaign, fields=["segment", "body"])
    return campaign


@transaction.atomic
def submit_campaign(*, actor: Actor, campaign: Campaign) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != CampaignStatus.DRAFT:
        raise ValidationError(_("Only a draft can be sent for approval."))
    campaign.status = CampaignStatus.PENDING
    campaign.save(update_fields=["status"])
    audit.record(actor=actor, action="campaign.submit", obj=campaign, fields=["status"])
    return campaign


@transaction.atomic
def approve_campaign(*, actor: Actor, campaign: Campaign, now: dt.datetime | None = None) -> Campaign:
    """A manager (or an admin) approves; the campaign goes out at ``send_at`` or at once. Staff cannot approve."""
    user = actor.user
    if not may_approve(user):
        raise PermissionDenied(_("Only a manager or an admin approves a campaign."))
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not selectors.campaigns_for(user).filter(pk=campaign.pk).exists():
        raise PermissionDenied(_("This campaign is not of your business units."))
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.PENDING):
        raise ValidationError(_("This campaign is not waiting for approval."))
    now = now or timezone.now()
    campaign.status, campaign.approved_by, campaign.approved_at = CampaignStatus.APPROVED, user, now
    campaign.next_run_at = campaign.send_at if campaign.send_at and campaign.send_at > now else now
    campaign.save(update_fields=["status", "approved_by", "approved_at", "next_run_at"])
    audit.record(actor=actor, action="campaign.approve", obj=campaign, fields=["status"])
    if campaign.next_run_at <= now:
        from .tasks import run_campaign_task

        transaction.on_commit(lambda: run_campaign_task.enqueue(campaign_id=campaign.pk))
    return campaign


@transaction.atomic
def cancel_campaign(*, actor: Actor, campaign: Campaign) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status in (CampaignStatus.SENT, CampaignStatus.CANCELLED, CampaignStatus.SENDING):
        raise ValidationError(_("This campaign can no longer be cancelled."))
    if campaign.status == CampaignStatus.APPROVED and not may_approve(actor.user):
        raise PermissionDenied(_("Only a manager or an admin cancels an approved campaign."))
    campaign.status, campaign.next_run_at = CampaignStatus.CANCELLED, None
    campaign.save(update_fields=["status", "next_run_at"])
    audit.record(actor=actor, action="campaign.cancel", obj=campaign, fields=["status"])
    return campaign


# --- audience and personalisation --------------------------------------------------------------------------------------

def audience(campaign: Campaign, *, user: User | None = None, now: dt.datetime | None = None):
    """The campaign's customers now: the segment, within the sending unit's members."""
    qs = selectors.segment_customers(campaign.segment, user=user, now=now)
    if campaign.unit_id and campaign.segment.unit_id != campaign.unit_id:
        qs = qs.filter(Exists(Membership.objects.filter(customer_id=OuterRef("pk"), unit_id=campaign.unit_id)))
    return qs


def create_offer(offer: OfferInput, units: Sequence[BusinessUnit]) -> Offer:
    """A checked offer, good at ``units`` (none: at every business unit)."""
    saved = Offer.objects.create(kind=offer.kind, value=offer.value, valid_days=offer.valid_days,
                                 min_spend_krw=offer.min_spend_krw)
    saved.units.set(units)
    return saved


def coupon_template_for(offer: Offer, name: str) -> CouponTemplate:
    """The offer's coupon template, made on the first send with the offer's units."""
    if offer.coupon_template_id is None:
        offer.coupon_template = CouponTemplate.objects.create(
            name=name[:120], kind=CouponKind.PERCENT if offer.kind == OfferKind.PERCENT else CouponKind.AMOUNT,
            value=offer.value, min_spend_krw=offer.min_spend_krw, valid_days=offer.valid_days)
        offer.coupon_template.units.set(offer.units.all())
        offer.save(update_fields=["coupon_template"])
    return offer.coupon_template


def offer_text(offer: Offer | None) -> str:
    if offer is None:
        return ""
    return f"{offer.value}%" if offer.kind == OfferKind.PERCENT else f"{offer.value:,}원"


def personal_values(customer_ids: np.ndarray, used: set[str], *, unit: BusinessUnit | None,
                    id_query=None) -> dict[str, dict[int, str]]:
    """Each used placeholder's value per customer, read set-based: one query per kind over ``id_query`` (a values
    queryset of the same ids, e.g. a run's recipients) or over chunks of the ids."""
    from dangol.loyalty import selectors as loyalty_selectors
    from dangol.loyalty.models import Account

    now = timezone.now()
    ids = [int(i) for i in customer_ids]
    out: dict[str, dict[int, str]] = {key: {} for key in used}
    chunks = [id_query] if id_query is not None else [ids[start:start + SEND_CHUNK] for start in range(0, len(ids), SEND_CHUNK)]
    for chunk in chunks:
        if "name" in used:
            out["name"].update(Customer.objects.filter(pk__in=chunk).values_list("pk", "name"))
        if "tier" in used:
            out["tier"].update(Account.objects.filter(pk__in=chunk, tier__isnull=False).values_list("pk", "tier__name"))
        if "points" in used:  # the spendable balance, as on the counter and in the points rule
            for pk, total in Customer.objects.filter(pk__in=chunk) \
                    .annotate(balance=loyalty_selectors.balance_expression(now)).values_list("pk", "balance"):
                out["points"][pk] = f"{int(total):,}"
    if "points" in used:
        for pk in ids:
            out["points"].setdefault(pk, "0")
    if "unit" in used and unit is not None:
        out["unit"] = {pk: unit.name for pk in ids}
    if "best_product" in used and ids:
        out["best_product"] = best_products(np.asarray(ids, dtype=np.int64), unit=unit)
    return out


def best_products(customer_ids: np.ndarray, *, unit: BusinessUnit | None) -> dict[int, str]:
    """The cross-sell product analytics recommends to each customer (empty when it has none)."""
    from dangol.analytics.recommendations import next_best_scores
    from dangol.sales.models import Product

    products = Product.objects.filter(is_active=True)
    if unit is not None:
        products = products.filter(unit=unit)
    allowed = list(products.values_list("pk", flat=True))
    try:
        ids, top, _scores = next_best_scores(customer_ids=customer_ids.tolist(), allowed_product_ids=allowed, limit=1)
    except Exception:  # noqa: BLE001 — a missing model must not stop a campaign; the placeholder stays empty
        logger.exception("cross-sell recommendations unavailable")
        return {}
    names = dict(Product.objects.filter(pk__in=set(int(p) for p in top[:, 0] if p)).values_list("pk", "name"))
    return {int(c): names.get(int(p), "") for c, p in zip(ids, top[:, 0]) if p}


# --- preview ----------------------------------------------------------------------------------------------------------

def preview_campaign(*, campaign: Campaign, user: User, samples: int = 5, now: dt.datetime | None = None) -> dict:
    """Rendered messages for a few recipients (names masked for staff) and the compliance outcome for the whole
    audience (how many would be sent, held for the morning, blocked and why), without writing anything."""
    now = now or timezone.now()
    qs = audience(campaign, user=user, now=now).order_by()
    ids = np.fromiter(qs.values_list("pk", flat=True), dtype=np.int64)
    held = holdout_mask(campaign.pk, ids, campaign.holdout_pct)
    treated = ids[~held]
    variants = list(campaign.variants.all())
    codes = variant_of(campaign.pk, treated, [v.code for v in variants], [v.weight for v in variants]) if len(variants) else []
    sample_ids = treated[:samples]
    used = set()
    for v in variants:
        used |= templating.variables_in(v.body) | templating.variables_in(v.subject)
    values = personal_values(sample_ids, used | {"name"}, unit=campaign.unit)
    by_code = {v.code: v for v in variants}
    rendered = []
    for index, pk in enumerate(sample_ids.tolist()):
        variant = by_code[str(codes[index])]
        row = {key: values.get(key, {}).get(pk, "") for key in used}
        if "coupon_code" in used:
            row["coupon_code"] = "SAMPLE0000"
        row["coupon_value"] = offer_text(campaign.offer)
        if campaign.offer:
            row["coupon_expires"] = timezone.localdate(now + dt.timedelta(days=campaign.offer.valid_days)).isoformat()
        name = values["name"].get(pk, "")
        rendered.append({"customer_id": pk, "name": name if user.may_see_full_contacts else mask_name(name),
                         "variant": variant.code, "subject": templating.render(variant.subject, row),
                         "body": templating.render(variant.body, row)})
    # The treated customers' ids as a list while it is small; a large audience is checked whole, in SQL (the holdout
    # is a random tenth of it, so the shares are the same) rather than as a list of a hundred thousand parameters.
    whole = len(treated) > PREVIEW_LIST_LIMIT
    compliance = messaging.preview(customer_ids=qs.values("pk") if whole else treated.tolist(), channel=campaign.channel,
                                   kind=campaign.kind, now=now) \
        if len(treated) else {"total": 0, "send": 0, "hold": 0, "block": 0, "by_reason": {}}
    return {"audience": int(len(ids)), "holdout": int(held.sum()), "treated": int(len(treated)), "samples": rendered,
            "compliance": compliance, "compliance_of_whole_segment": whole}


# --- sending ------------------------------------------------------------------------------------------------------------

def _occurrence(campaign: Campaign, now: dt.datetime) -> str:
    return timezone.localdate(now).isoformat() if campaign.recurrence else "1"


def _next_run(campaign: Campaign, after: dt.datetime) -> dt.datetime | None:
    if not campaign.recurrence:
        return None
    step = {"daily": dt.timedelta(days=1), "weekly": dt.timedelta(days=7), "monthly": dt.timedelta(days=30)}[campaign.recurrence]
    moment = campaign.next_run_at or after
    while moment <= after:
        moment += step
    return moment


def run_campaign(*, campaign_id: int, now: dt.datetime | None = None) -> CampaignRun | None:
    """Send an approved campaign now (the task). Returns the run, or None when there is nothing to do."""
    now = now or timezone.now()
    started = time.perf_counter()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update(of=("self",)).select_related("segment", "segment__unit", "unit", "offer") \
            .filter(pk=campaign_id).first()
        if campaign is None or campaign.status != CampaignStatus.APPROVED:
            return None
        occurrence = _occurrence(campaign, now)
        try:
            with transaction.atomic():
                run = CampaignRun.objects.create(campaign=campaign, occurrence=occurrence, started_at=now)
        except IntegrityError:
            return CampaignRun.objects.get(campaign=campaign, occurrence=occurrence)  # sent already: idempotent
        phases = {}
        mark = time.perf_counter()
        ids = np.fromiter(audience(campaign, now=now).order_by("pk").values_list("pk", flat=True), dtype=np.int64)
        held = holdout_mask(campaign.pk, ids, campaign.holdout_pct)
        treated = ids[~held]
        variants = list(campaign.variants.all())
        codes = variant_of(campaign.pk, treated, [v.code for v in variants], [v.weight for v in variants])
        phases["select"], mark = time.perf_counter() - mark, time.perf_counter()
        coupon_ids = np.zeros(len(treated), dtype=np.int64)
        coupon_codes: dict[int, str] = {}
        template = None
        if campaign.offer is not None and len(treated):
            template = coupon_template_for(campaign.offer, campaign.name)
            issued = issue_coupons(template=template, customer_ids=treated.tolist(), source=CouponSource.CAMPAIGN,
                                   source_ref=f"{campaign.source}:{occurrence}", now=now)
            coupon_ids = np.asarray(issued, dtype=np.int64)
            coupon_codes = dict(Coupon.objects.filter(pk__gte=int(coupon_ids.min()), pk__lte=int(coupon_ids.max()),
                                                      source_ref=f"{campaign.source}:{occurrence}")
                                .values_list("customer_id", "code"))
        phases["coupons"], mark = time.perf_counter() - mark, time.perf_counter()
        all_coupons = np.zeros(len(ids), dtype=np.int64)
        all_coupons[~held] = coupon_ids
        all_variants = np.full(len(ids), "", dtype=object)
        all_variants[~held] = codes
        bulk.write(Rows(Recipient, len(ids), {
            "run": run.pk, "customer": ids, "variant": [str(v) for v in all_variants.tolist()], "is_holdout": held,
            "coupon_id": NullableInts(all_coupons, all_coupons == 0)}))
        phases["recipients"], mark = time.perf_counter() - mark, time.perf_counter()
        used: set[str] = set()
        for v in variants:
            used |= templating.variables_in(v.body) | templating.variables_in(v.subject)
        values = personal_values(treated, used, unit=campaign.unit,
                                 id_query=Recipient.objects.filter(run=run, is_holdout=False).values("customer_id"))
        phases["personalisation"], mark = time.perf_counter() - mark, time.perf_counter()
        expires = timezone.localdate(now + dt.timedelta(days=template.valid_days)).isoformat() if template else ""
        common = {"coupon_value": offer_text(campaign.offer), "coupon_expires": expires}
        outcome: dict = {}
        for variant in variants:
            mine = treated[codes == variant.code]

            def rows(mine=mine, variant=variant):
                for pk in mine.tolist():
                    row = {key: values[key].get(pk, "") for key in used if key in values}
                    row.update(common)
                    row["coupon_code"] = coupon_codes.get(pk, "")
                    yield {"customer_id": pk, "body": templating.render(variant.body, row),
                           "subject": templating.render(variant.subject, row)}

            ready = list(rows())
            phases["render"] = phases.get("render", 0.0) + time.perf_counter() - mark
            mark = time.perf_counter()
            counts = messaging.send_bulk(rows=ready, channel=campaign.channel, kind=campaign.kind, source=campaign.source,
                                         occurrence=occurrence, unit=campaign.unit, actor=None, image=campaign.image)
            phases["messaging_send_bulk"] = phases.get("messaging_send_bulk", 0.0) + time.perf_counter() - mark
            mark = time.perf_counter()
            outcome[variant.code] = counts
        outcome["seconds"] = {key: round(value, 2) for key, value in phases.items()}
        run.recipients, run.holdout = int(len(treated)), int(held.sum())
        run.outcome, run.finished_at = outcome, timezone.now()
        run.seconds = round(time.perf_counter() - started, 3)
        run.save()
        campaign.last_sent_at = now
        campaign.next_run_at = _next_run(campaign, now)
        if campaign.next_run_at is None:
            campaign.status = CampaignStatus.SENT
        campaign.save(update_fields=["last_sent_at", "next_run_at", "status"])
    logger.info("campaign %s run %s: %s recipients, %s held out, %.1f s", campaign.pk, occurrence, run.recipients,
                run.holdout, run.seconds)
    return run


def run_due_campaigns(*, now: dt.datetime | None = None) -> int:
    """The periodic job: every approved campaign whose time has come."""
    now = now or timezone.now()
    due = list(Campaign.objects.filter(status=CampaignStatus.APPROVED, next_run_at__lte=now).values_list("pk", flat=True))
    for pk in due:
        run_campaign(campaign_id=pk, now=now)
    return len(due)
