"""Member-get-member: a newcomer joins with a code, both are rewarded at the newcomer's first qualifying purchase
(not at sign-up), abuse is refused, and referrals make advocates."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from dangol.core.audit import Actor
from dangol.core.models import AuditEvent
from dangol.customers.models import Customer, Stage
from dangol.customers.services import ContactPoint
from dangol.loyalty import services
from dangol.loyalty.models import Account, EntryKind, LedgerEntry, Referral, ReferralStatus

from tests.loyalty.conftest import assert_ledger_consistent, balance
from tests.loyalty.test_jobs import captured  # noqa: F401 (fixture)


@pytest.fixture
def referrer(program, make_customer):
    customer = make_customer("seoul-hotel", name="추천인", phone="010-7000-0001", stage=Stage.REGULAR)
    return customer


def code_of(customer) -> str:
    return services.ensure_account(customer).referral_code


def test_both_are_rewarded_at_the_first_qualifying_purchase_not_at_sign_up(referrer, make_customer, buy, bora, captured):
    newcomer = make_customer("bakery", name="새손님", phone="010-7000-0002")
    referral = services.link_referral(actor=Actor(user=bora), customer=newcomer, code=code_of(referrer).lower())
    assert referral.status == ReferralStatus.PENDING and referral.linked_by == bora
    assert balance(referrer) == balance(newcomer) == 0  # nothing at sign-up
    buy(newcomer, "croissant", 1)  # 4,500 KRW: below the qualifying 10,000
    assert Referral.objects.get().status == ReferralStatus.PENDING
    buy(newcomer, "croissant", 3)  # 13,500 KRW: the first qualifying purchase
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.REWARDED and referral.qualifying_order.total == 13_500
    rewards = dict(LedgerEntry.objects.filter(referral=referral).values_list("customer_id", "points"))
    assert rewards == {referrer.pk: 3000, newcomer.pk: 2000}
    assert balance(newcomer) == 2000 + 45 + 135
    [event] = captured["referral_rewarded"]
    assert (event["referrer_id"], event["referred_id"], event["referrer_points"], event["referred_points"]) == (
        referrer.pk, newcomer.pk, 3000, 2000)
    referrer.refresh_from_db()
    assert referrer.stage == Stage.ADVOCATE  # one rewarded referral makes an advocate (the program's setting)
    assert AuditEvent.objects.filter(action="customer.stage", object_id=str(referrer.pk)).exists()
    buy(newcomer, "croissant", 3)
    assert LedgerEntry.objects.filter(referral__isnull=False).count() == 2  # once only
    assert_ledger_consistent()


def test_a_partner_stays_a_partner(referrer, make_customer, buy):
    Customer.objects.filter(pk=referrer.pk).update(stage=Stage.PARTNER)
    newcomer = make_customer("bakery", phone="010-7000-0003")
    services.link_referral(actor=Actor.system("test"), customer=newcomer, code=code_of(referrer))
    buy(newcomer, "croissant", 3)
    referrer.refresh_from_db()
    assert referrer.stage == Stage.PARTNER


@pytest.mark.parametrize("case, message", [
    ("unknown", "No member has this referral code."),
    ("empty", "Enter the referral code."),
    ("self", "A member cannot refer themselves."),
    ("same_phone", "The referrer and the newcomer share a phone number or an email."),
    ("same_email", "The referrer and the newcomer share a phone number or an email."),
    ("loop", "This referral would make a loop of referrals."),
    ("old_member", "A referral code is accepted within 30 days of joining."),
    ("already_bought", "A referral code is accepted before the first purchase only."),
    ("twice", "This customer already joined with a referral code."),
])
def test_abuse_is_refused_with_a_reason(case, message, referrer, make_customer, buy):
    newcomer = make_customer("bakery", name="새손님", phone="010-7000-0009")
    code = code_of(referrer)
    if case == "unknown":
        code = "ZZZZZZZZ"
    elif case == "empty":
        code = " - "
    elif case == "self":
        newcomer = referrer
    elif case == "same_phone":
        ContactPoint.objects.create(customer=newcomer, kind="phone", value="+821070000001", last4="0001")
    elif case == "same_email":
        ContactPoint.objects.create(customer=referrer, kind="email", value="a@example.kr")
        ContactPoint.objects.create(customer=newcomer, kind="email", value="a@example.kr")
    elif case == "loop":
        # The referrer joined with the newcomer's code: the newcomer cannot now join with the referrer's.
        Customer.objects.filter(pk=referrer.pk).update(joined_at=timezone.now())
        Referral.objects.create(referrer=newcomer, referred=referrer, code=code_of(newcomer), linked_at=timezone.now())
    elif case == "old_member":
        Customer.objects.filter(pk=newcomer.pk).update(joined_at=timezone.now() - dt.timedelta(days=31))
    elif case == "already_bought":
        buy(newcomer, "croissant", 3)
    elif case == "twice":
        other = make_customer("bakery", phone="010-7000-0010")
        services.link_referral(actor=Actor.system("test"), customer=newcomer, code=code_of(other))
    before = Referral.objects.count()
    with pytest.raises(ValidationError) as caught:
        services.link_referral(actor=Actor.system("test"), customer=newcomer, code=code)
    assert caught.value.message_dict == {"code": [message]}
    assert Referral.objects.count() == before


def test_a_referral_between_records_of_one_person_is_refused_by_the_merge_and_back_on_undo(referrer, make_customer, buy, alice):
    from dangol.ingest.merge import merge_customers, unmerge

    newcomer = make_customer("bakery", name="추천인", phone="010-7000-0004")
    referral = services.link_referral(actor=Actor.system("test"), customer=newcomer, code=code_of(referrer))
    merge = merge_customers(actor=Actor(user=alice), survivor=referrer, merged=newcomer)
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.REFUSED and "merged duplicates" in referral.refusal
    assert referral.referrer_id == referral.referred_id == referrer.pk
    newcomer.refresh_from_db()
    buy(newcomer, "croissant", 3)  # bought as the merged record: lands on the survivor, rewards nobody
    assert not LedgerEntry.objects.filter(referral__isnull=False).exists()
    unmerge(actor=Actor(user=alice), merge=merge)
    referral.refresh_from_db()
    assert (referral.status, referral.referrer_id, referral.referred_id) == (ReferralStatus.PENDING, referrer.pk, newcomer.pk)


def test_duplicates_found_after_the_link_are_refused_at_reward_time(referrer, make_customer, buy):
    newcomer = make_customer("bakery", phone="010-7000-0005")
    referral = services.link_referral(actor=Actor.system("test"), customer=newcomer, code=code_of(referrer))
    ContactPoint.objects.create(customer=newcomer, kind="phone", value="+821070000001", last4="0001")  # learnt later
    buy(newcomer, "croissant", 3)
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.REFUSED and "share a phone" in referral.refusal
    assert not LedgerEntry.objects.filter(kind=EntryKind.EARN, referral__isnull=False).exists()


def test_the_referral_code_of_a_merged_record_still_works(referrer, make_customer, alice):
    from dangol.ingest.merge import merge_customers

    duplicate = make_customer("bakery", phone="010-7000-0006")
    old_code = code_of(duplicate)
    merge_customers(actor=Actor(user=alice), survivor=referrer, merged=duplicate)
    newcomer = make_customer("bakery", phone="010-7000-0007")
    referral = services.link_referral(actor=Actor.system("test"), customer=newcomer, code=old_code)
    assert referral.referrer_id == referrer.pk
    assert Account.objects.filter(referral_code=old_code, customer=duplicate).exists()
