"""dangol loyalty setup|backfill|expire|notify|tiers|check|card-link

- ``setup``: the program with a starting configuration (earn rules of the demo units, Silver/Gold/VIP with upgrade
  coupons), only where nothing is configured yet; safe to run again.
- ``backfill``: earn on every past sale and reverse every past refund not applied yet (resumable, idempotent), then
  accounts for every live customer; ``--expire`` and ``--tiers`` run those jobs afterwards.
- ``expire`` / ``notify`` / ``tiers``: the scheduled jobs, now.
- ``check``: every balance equals its ledger and its lots; exit status 1 when one does not.
- ``card-link CUSTOMER_ID``: the member card's signed path.

The last line printed is a summary of counts.
"""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from dangol.core.models import BusinessUnit
from dangol.customers.models import Customer


class Command(BaseCommand):
    help = "Loyalty program: set up, backfill points from past orders, run the expiry, notice and tier jobs, check."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["setup", "backfill", "expire", "notify", "tiers", "check", "card-link"])
        parser.add_argument("customer_id", nargs="?", type=int, help="for card-link")
        parser.add_argument("--chunk", type=int, default=200_000, help="orders per backfill transaction")
        parser.add_argument("--expire", action="store_true", help="after the backfill, expire what is past its date")
        parser.add_argument("--tiers", action="store_true", help="after the backfill, review every tier")

    def handle(self, *args, action: str, customer_id: int | None, chunk: int, expire: bool, tiers: bool, **options):
        started = time.perf_counter()
        if action == "setup":
            self.stdout.write(setup())
        elif action == "backfill":
            from dangol.loyalty.earning import backfill, ensure_accounts

            if chunk < 1:
                raise CommandError("--chunk must be at least 1")
            done = backfill(chunk=chunk, progress=lambda line: self.stderr.write(line) if options["verbosity"] > 1 else None)
            with transaction.atomic():
                created = ensure_accounts(list(Customer.objects.filter(merged_into__isnull=True).values_list("pk", flat=True)))
            line = (f"earned orders: {done.earned_orders}, earned points: {done.earned_points}, reversed orders: "
                    f"{done.reversed_orders}, reversed points: {done.reversed_points}, accounts created: {created}")
            if expire:
                from dangol.loyalty.jobs import expire_due_points

                line += ", " + expire_due_points().summary_line
            if tiers:
                from dangol.loyalty.tiers import evaluate_tiers

                with transaction.atomic():
                    line += ", " + evaluate_tiers().summary_line
            self.stdout.write(f"{line}, seconds: {time.perf_counter() - started:.1f}")
        elif action == "expire":
            from dangol.loyalty.jobs import expire_due_points

            self.stdout.write(expire_due_points().summary_line)
        elif action == "notify":
            from dangol.loyalty.jobs import notify_expiring_points

            self.stdout.write(f"customers notified: {notify_expiring_points()}")
        elif action == "tiers":
            from dangol.loyalty.tiers import evaluate_tiers

            with transaction.atomic():
                self.stdout.write(evaluate_tiers().summary_line)
        elif action == "check":
            bad = check()
            if bad:
                raise CommandError(f"customers whose lots disagree with their ledger: {bad}")
            self.stdout.write("customers whose lots disagree with their ledger: 0")
        elif action == "card-link":
            from dangol.loyalty.card import card_path
            from dangol.loyalty.services import ensure_account, live_customer

            customer = Customer.objects.filter(pk=customer_id).first() if customer_id else None
            if customer is None:
                raise CommandError("Give the id of an existing customer.")
            self.stdout.write(card_path(ensure_account(live_customer(customer)).member_number))


def check() -> int:
    """The number of customers for whom sum(entries) != sum(lot.remaining) - points_owed."""
    from dangol.loyalty import db
    from dangol.loyalty.models import Account, LedgerEntry, Lot

    sql = f"""
        SELECT COUNT(*) FROM (
            SELECT customer_id, SUM(points) AS p FROM (
                SELECT customer_id, points FROM {LedgerEntry._meta.db_table}
                UNION ALL SELECT customer_id, -remaining FROM {Lot._meta.db_table} WHERE remaining > 0
                UNION ALL SELECT customer_id, points_owed FROM {Account._meta.db_table} WHERE points_owed > 0
            ) x GROUP BY customer_id
        ) y WHERE p <> 0"""
    return int(db.fetch(sql)[0][0])


def setup() -> str:
    """A starting configuration for the demo business, where nothing is configured yet."""
    from dangol.loyalty.models import CouponKind, CouponTemplate, EarnRule, Program, Tier

    with transaction.atomic():
        program = Program.current()
        rates = {"seoul-hotel": 300, "busan-hotel": 300, "restaurant": 200, "bakery": 100}
        rules = 0
        for unit in BusinessUnit.objects.filter(code__in=rates):
            _rule, created = EarnRule.objects.get_or_create(unit=unit, defaults={"rate_bp": rates[unit.code]})
            rules += created
        tiers = 0
        if not Tier.objects.exists():
            bakery = BusinessUnit.objects.filter(code="bakery").first()
            coffee = CouponTemplate.objects.create(name="Free coffee and bread set", kind=CouponKind.GIFT, value=0,
                                                   valid_days=60)
            if bakery is not None:
                coffee.units.set([bakery])
            ten = CouponTemplate.objects.create(name="10,000 KRW off", kind=CouponKind.AMOUNT, value=10_000,
                                                min_spend_krw=50_000, valid_days=90)
            upgrade = CouponTemplate.objects.create(name="Room upgrade", kind=CouponKind.GIFT, value=0, valid_days=180)
            for rank, (code, name, threshold, multiplier, coupon, benefits) in enumerate([
                    ("silver", "Silver", 500_000, 110, coffee, "+10 % points"),
                    ("gold", "Gold", 2_000_000, 125, ten, "+25 % points, late check-out"),
                    ("vip", "VIP", 5_000_000, 150, upgrade, "+50 % points, room upgrade, lounge")], start=1):
                Tier.objects.create(code=code, name=name, rank=rank, threshold=threshold, earn_multiplier_pct=multiplier,
                                    upgrade_coupon=coupon, benefits=benefits)
                tiers += 1
    return f"program: {program.name}, earn rules created: {rules}, tiers created: {tiers}"
