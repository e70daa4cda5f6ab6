"""``dangol playbook_demo``: what the demo shows of the playbook's parts — the bakery's stamp card with a few members
stamped, a card company with an export agreement (some Seoul hotel guests consented) and an import agreement, and a
wine tasting at the Seoul hotel next week for a static segment of its best guests. Idempotent: run again, it adds
nothing."""
from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from dangol.core.audit import Actor
from dangol.core.models import BusinessUnit


class Command(BaseCommand):
    help = "Demo data of stamp cards, partner sharing and events (idempotent)."

    def handle(self, *args, **options):
        units = {u.code: u for u in BusinessUnit.objects.all()}
        if not {"bakery", "seoul-hotel"} <= set(units):
            self.stdout.write("playbook demo: the demo's business units are missing; nothing done")
            return
        now = timezone.now()
        with transaction.atomic():
            self._stamps(units["bakery"], now)
            self._partners(units["seoul-hotel"], now)
            self._event(units["seoul-hotel"], now)

    def _stamps(self, bakery, now):
        from dangol.customers.models import Customer
        from dangol.loyalty import stamps
        from dangol.loyalty.models import CouponKind, CouponTemplate, StampBasis, StampCard

        if StampCard.objects.filter(unit=bakery).exists():
            return
        reward, created = CouponTemplate.objects.get_or_create(
            name="아메리카노 1잔 무료", defaults={"kind": CouponKind.GIFT, "value": 0, "valid_days": 30,
                                            "description": "스탬프 10개 적립 보상"})
        if created:
            reward.units.set([bakery])
        StampCard.objects.create(unit=bakery, name="베이커리 스탬프", basis=StampBasis.PURCHASE, stamps=1, min_amount_krw=5000,
                                 target=10, reward=reward, validity_days=365, starts_at=now - dt.timedelta(days=1))
        regulars = Customer.objects.filter(memberships__unit=bakery, merged_into__isnull=True).order_by("pk")[:12]
        for index, customer in enumerate(regulars):
            stamps.stamp(actor=Actor.system("demo"), customer=customer, unit=bakery, stamps=1 + index % 5,
                         idempotency_key=f"demo-stamp-{customer.pk}")
        self.stdout.write("Stamp card: 베이커리 스탬프 (10 stamps → 아메리카노 1잔 무료)")

    def _partners(self, hotel, now):
        from dangol.customers.models import Customer
        from dangol.partners import services
        from dangol.partners.models import Agreement, ConsentMethod, Direction, Partner, PartnerKind

        partner, created = Partner.objects.get_or_create(name="한빛카드", defaults={"kind": PartnerKind.CARD,
                                                                                  "contact": "privacy@hanbitcard.example"})
        if not created:
            return
        notice = ("제공받는 자: 한빛카드 / 이용 목적: 제휴 카드 혜택 안내 및 발급 / 제공 항목: 이름, 휴대전화번호, 회원번호 / "
                  "보유 기간: 제휴 종료 또는 동의 철회 시까지 / 동의를 거부할 수 있으며, 거부 시 제휴 혜택 안내를 받을 수 없습니다.")
        outbound = Agreement.objects.create(
            partner=partner, title="제휴 카드", purpose="제휴 카드 혜택 안내 및 발급", direction=Direction.TO_PARTNER,
            fields=["name", "phone", "member_number"], unit=hotel, valid_from=now - dt.timedelta(days=30),
            valid_until=now + dt.timedelta(days=365), notice_version="2026-11", notice_text=notice, retention="제휴 종료 시까지")
        Agreement.objects.create(
            partner=partner, title="카드 회원 호텔 혜택", purpose="호텔 객실 혜택 안내", direction=Direction.FROM_PARTNER,
            fields=["name", "phone"], unit=hotel, valid_from=now - dt.timedelta(days=30), valid_until=now + dt.timedelta(days=365),
            notice_version="HC-2026-1")
        guests = Customer.objects.filter(memberships__unit=hotel, merged_into__isnull=True, erased_at__isnull=True,
                                         processing_suspended=False).order_by("pk")[:25]
        for index, guest in enumerate(guests):
            services.record_consent(actor=Actor.system("demo"), customer=guest, agreement=outbound, granted=index % 5 != 0,
                                    method=ConsentMethod.PAPER, evidence=f"동의서 2026-{index + 1:04d}", unit=hotel,
                                    at=now - dt.timedelta(days=index))
        self.stdout.write("Partner: 한빛카드 (export and import agreements, 25 consent answers)")

    def _event(self, hotel, now):
        from dangol.analytics.models import CustomerMetrics
        from dangol.campaigns.models import Segment, SegmentKind, SegmentMember
        from dangol.gatherings.models import Event

        if Event.objects.filter(unit=hotel).exists():
            return
        segment = Segment.objects.create(name="서울 호텔 VIP (시음회)", unit=hotel, kind=SegmentKind.STATIC, frozen_at=now)
        best = (CustomerMetrics.objects.filter(customer__memberships__unit=hotel, customer__merged_into__isnull=True)
                .order_by("-monetary_total").values_list("customer_id", flat=True)[:60])
        SegmentMember.objects.bulk_create([SegmentMember(segment=segment, customer_id=c) for c in best], ignore_conflicts=True)
        Segment.objects.filter(pk=segment.pk).update(member_count=SegmentMember.objects.filter(segment=segment).count())
        start = (now + dt.timedelta(days=7)).replace(hour=10, minute=0, second=0, microsecond=0)  # 19:00 in Seoul
        Event.objects.create(unit=hotel, title="보르도 와인 시음회", kind="tasting", starts_at=start,
                             ends_at=start + dt.timedelta(hours=2), place="로비 라운지", capacity=30, segment=segment,
                             holdout_pct=10, followup_days=14)
        self.stdout.write("Event: 보르도 와인 시음회 next week (segment of the 60 best hotel guests; press Invite)")
