"""Demo data of the marketing half: automations of the Seoul hotel, the "VIP, 강남구, no visit in 90 days" segment and
a win-back campaign that was sent, with simulated purchases (some with the coupon) so that its report shows an uplift
against the holdout. Called by the demo command after the business is generated and loyalty is set up:

    from dangol.campaigns import demo
    demo.seed(manager=<the manager User>, seed=42)
"""
from __future__ import annotations

import datetime as dt

import numpy as np
from django.db import transaction
from django.utils import timezone

from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit, User
from dangol.loyalty.models import Coupon, Tier
from dangol.loyalty.services import use_coupon
from dangol.sales.models import Product
from dangol.sales.services import LineInput, record_order

from . import automations, segments, selectors, services
from .models import Recipient, Segment

WINBACK_BODY = "{{ name }}님, 오랜만이에요. {{ unit }}에서 {{ coupon_value }} 할인 쿠폰을 드려요: {{ coupon_code }} ({{ coupon_expires }}까지)"
# (name, how many of the best tiers it takes: 0 = no tier rule), tried in this order.
_SEGMENTS = [("VIP · 강남·서초 · 90일 미방문", 2), ("등급 회원 · 강남·서초 · 90일 미방문", 99), ("강남·서초 · 90일 미방문", 0)]
MIN_AUDIENCE = 20
BIRTHDAY_BODY = "{{ name }}님, 곧 생일이시네요! {{ unit }}이 {{ coupon_value }} 생일 쿠폰을 드립니다: {{ coupon_code }}"


@transaction.atomic
def seed(*, manager: User, seed: int = 42, unit_code: str = "seoul-hotel", now: dt.datetime | None = None) -> dict:
    """Idempotent enough for the demo: skipped when the demo segment already exists. Returns what it made."""
    now = now or timezone.now()
    unit = BusinessUnit.objects.get(code=unit_code)
    if Segment.objects.filter(name__in=[name for name, _tiers in _SEGMENTS]).exists():
        return {"skipped": True}
    actor = Actor(user=manager, via="demo")
    percent10 = services.OfferInput(kind="percent", value=10, valid_days=14)
    automations.save_automation(actor=actor, unit=unit, kind="birthday", channel="sms", body=BIRTHDAY_BODY, days=3,
                                offer=percent10)
    automations.save_automation(actor=actor, unit=unit, kind="winback", channel="sms", body=WINBACK_BODY, days=90,
                                offer=percent10)
    automations.save_automation(actor=actor, unit=unit, kind="thank_you", channel="kakao", days=1,
                                body="{{ name }}님, 한빛호텔을 찾아주셔서 감사합니다. 다음 방문 때 뵙겠습니다.")
    automations.save_automation(actor=actor, unit=unit, kind="tier_up", channel="sms",
                                body="{{ name }}님, {{ tier }} 등급이 되셨어요! 새 혜택을 확인해 보세요.")
    # The story's segment is "the best tiers, 강남구/서초구, no stay for 90 days". Regulars of the top tiers come back
    # often, so in a generated month there may be too few of them for a report worth reading: the demo widens the
    # tiers, then drops them, until at least MIN_AUDIENCE guests match (the segment's name says which it is).
    sent_at = now - dt.timedelta(days=10)
    ranked = list(Tier.objects.filter(is_active=True).order_by("-rank").values_list("code", flat=True))
    for index, (name, take) in enumerate(_SEGMENTS):
        rules = [{"field": "sigungu", "operator": "in", "value": ["강남구", "서초구"]},
                 {"field": "days_since_purchase", "operator": "gte", "value": 90}]
        if take and ranked:
            rules.insert(0, {"field": "tier", "operator": "in", "value": ranked[:take]})
        tree = {"op": "and", "rules": rules}
        if index == len(_SEGMENTS) - 1 or \
                selectors.count_matching(tree, unit=unit, user=manager, now=sent_at) >= MIN_AUDIENCE:
            break
    segment = segments.create_segment(actor=actor, name=name, unit=unit, tree=tree)
    campaign = services.create_campaign(actor=actor, name="윈백 (SMS, 10% 쿠폰)", segment=segment, channel="sms",
                                        unit=unit, variants=[services.VariantInput(body=WINBACK_BODY)], offer=percent10,
                                        holdout_pct=10)
    services.approve_campaign(actor=actor, campaign=campaign, now=sent_at)
    run = services.run_campaign(campaign_id=campaign.pk, now=sent_at)
    bought = _simulate_purchases(run, unit=unit, manager=manager, seed=seed, sent_at=sent_at) if run else 0
    return {"segment": segment.pk, "campaign": campaign.pk, "recipients": run.recipients if run else 0,
            "holdout": run.holdout if run else 0, "simulated_purchases": bought}


def _simulate_purchases(run, *, unit: BusinessUnit, manager: User, seed: int, sent_at: dt.datetime) -> int:
    """A third of the treated come back within the week (most with the coupon), one in ten of the holdout do."""
    rng = np.random.default_rng(seed)
    products = list(Product.objects.filter(unit=unit, is_active=True).order_by("-price")[:5])
    if not products:
        return 0
    actor = Actor(user=manager, via="demo")
    count = 0
    for recipient in Recipient.objects.filter(run=run).select_related("customer").order_by("customer_id"):
        chance = 0.1 if recipient.is_holdout else 0.33
        if rng.random() >= chance:
            continue
        at = sent_at + dt.timedelta(days=float(rng.uniform(0.5, 7)))
        product = products[int(rng.integers(0, len(products)))]
        order = record_order(actor=actor, unit=unit, customer=recipient.customer,
                             lines=[LineInput(product_id=product.pk, quantity=1)], at=at)
        if recipient.coupon_id and rng.random() < 0.8:
            use_coupon(actor=actor, coupon=Coupon.objects.get(pk=recipient.coupon_id), unit=unit, now=at,
                       amount_krw=int(order.total))
        count += 1
    return count
