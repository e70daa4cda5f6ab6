"""Merging two records of one person moves the points, lots, coupons, tier history and referrals to the survivor
(their ids recorded in the merge), and the undo moves exactly those back."""
from __future__ import annotations

from dangol.core.audit import Actor
from dangol.ingest.merge import merge_customers, unmerge
from dangol.loyalty import services
from dangol.loyalty.models import Account, Coupon, LedgerEntry, Lot, TierChange
from dangol.loyalty.wallet import issue_coupons

from tests.loyalty.conftest import assert_ledger_consistent, balance, open_points


def test_merge_moves_everything_to_the_survivor_and_the_undo_moves_it_back(tiers, make_customer, buy, alice, units):
    survivor = make_customer("seoul-hotel", name="김하늘", phone="010-8000-0001")
    merged = make_customer("bakery", name="김하늘", phone="010-8000-0002")
    buy(survivor, "croissant", 2)  # 90 P
    buy(merged, "deluxe")  # 7,500 P, Silver for the merged record
    [coupon_id] = issue_coupons(template=tiers["welcome"], customer_ids=[merged.pk], source="campaign")
    merged_entries = set(LedgerEntry.objects.filter(customer=merged).values_list("pk", flat=True))

    merge = merge_customers(actor=Actor(user=alice), survivor=survivor, merged=merged)

    assert set(merge.moved["loyalty_entries"]) == merged_entries
    assert set(merge.moved["loyalty_lots"]) == set(Lot.objects.filter(pk__in=merged_entries).values_list("pk", flat=True))
    assert merge.moved["loyalty_coupons"] == [coupon_id]
    assert len(merge.moved["loyalty_tier_changes"]) == 1
    assert balance(survivor) == open_points(survivor) == 7590 and balance(merged) == 0
    assert Coupon.objects.get(pk=coupon_id).customer_id == survivor.pk
    assert Account.objects.get(pk=survivor.pk).tier == tiers["silver"]  # reviewed with the orders it now holds
    assert TierChange.objects.filter(customer=survivor, cause="merge").exists()
    assert_ledger_consistent()

    unmerge(actor=Actor(user=alice), merge=merge)
    assert balance(survivor) == open_points(survivor) == 90
    assert balance(merged) == open_points(merged) == 7500
    assert Coupon.objects.get(pk=coupon_id).customer_id == merged.pk
    assert set(LedgerEntry.objects.filter(customer=merged).values_list("pk", flat=True)) == merged_entries
    assert_ledger_consistent()


def test_points_the_survivor_spent_from_the_merged_record_become_its_debt_after_the_undo(program, make_customer, buy, alice, units):
    survivor = make_customer("seoul-hotel", phone="010-8000-0003")
    merged = make_customer("bakery", phone="010-8000-0004")
    buy(survivor, "croissant", 2)  # 90 P
    buy(merged, "deluxe")  # 7,500 P
    merge = merge_customers(actor=Actor(user=alice), survivor=survivor, merged=merged)
    services.redeem_points(actor=Actor.system("test"), customer=survivor, points=7000, unit=units["bakery"])
    unmerge(actor=Actor(user=alice), merge=merge)
    # The merged record gets its own points back whole; the survivor spent 6,910 P that were not its own.
    assert balance(merged) == open_points(merged) == 7500
    assert balance(survivor) == 90 - 7000
    assert Account.objects.get(pk=survivor.pk).points_owed == 6910 and open_points(survivor) == 0
    assert_ledger_consistent()


def test_a_debt_merged_into_a_survivor_with_points_is_paid_from_them(program, make_customer, buy, alice, units):
    from dangol.sales.services import record_refund

    survivor = make_customer("seoul-hotel", phone="010-8000-0005")
    merged = make_customer("bakery", phone="010-8000-0006")
    buy(survivor, "deluxe")  # 7,500 P
    sale = buy(merged, "deluxe")
    services.redeem_points(actor=Actor.system("test"), customer=merged, points=7500, unit=units["bakery"])
    record_refund(actor=Actor.system("test"), order=sale)  # owes 7,500
    merge = merge_customers(actor=Actor(user=alice), survivor=survivor, merged=merged)
    assert merge.moved["loyalty_points_owed"] == [7500]
    assert Account.objects.get(pk=survivor.pk).points_owed == 0 and open_points(survivor) == 0 == balance(survivor)
    assert_ledger_consistent()
    unmerge(actor=Actor(user=alice), merge=merge)
    assert balance(survivor) == open_points(survivor) == 7500
    assert balance(merged) == -7500 and Account.objects.get(pk=merged.pk).points_owed == 7500
    assert_ledger_consistent()
