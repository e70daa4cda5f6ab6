"""Dashboard additions: the share of revenue from members per unit and Seoul month (one aggregate query), and the stamp
card figures, on the manager dashboard."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test.utils import CaptureQueriesContext
from django.db import connection
from django.utils import timezone

from dangol.analytics import membership_share
from dangol.analytics.dashboard import make_filter
from dangol.core.audit import Actor
from dangol.loyalty import stamps
from dangol.loyalty.models import CouponKind, CouponTemplate, StampCard
from dangol.loyalty.services import ensure_account
from dangol.sales.services import LineInput, record_order, record_refund

from tests.helpers import login


@pytest.fixture
def sales(program, make_customer, products, units):
    member = make_customer("bakery", name="김회원")
    ensure_account(member)
    guest = make_customer("bakery", name="이손님")
    now = timezone.now()

    def sell(customer, product, quantity):
        return record_order(actor=Actor.system("test"), unit=products[product].unit, customer=customer,
                            lines=[LineInput(product_id=products[product].pk, quantity=quantity)], at=now)

    sell(member, "croissant", 4)  # 18,000 — and the member's account exists
    refunded = sell(member, "baguette", 2)  # 10,000, refunded below
    record_refund(actor=Actor.system("test"), order=refunded)
    sell(None, "croissant", 2)  # 9,000 walk-in
    sell(member, "deluxe", 1)  # 250,000 at the hotel
    # The guest earned points with the purchase too (an account): only a customer without one is a non-member.
    from dangol.loyalty.models import Account

    Account.objects.filter(pk=guest.pk).delete()
    sell(guest, "baguette", 1)  # 5,000, but the purchase creates the account again: a member from now on
    return {"member": member, "guest": guest}


def test_members_share_of_revenue_per_unit_and_month(sales, alice, units):
    f = make_filter(user=alice, period="30d")
    with CaptureQueriesContext(connection) as queries:
        share = membership_share.membership_share(f)
    assert len(queries) == 2  # the aggregate and the units' names
    bakery = next(r for r in share.by_unit if r.unit.code == "bakery")
    assert (bakery.member_revenue, bakery.revenue) == (18_000 + 5_000, 18_000 + 9_000 + 5_000)
    assert bakery.non_member_revenue == 9_000 and bakery.share == pytest.approx(23 / 32)
    hotel = next(r for r in share.by_unit if r.unit.code == "seoul-hotel")
    assert hotel.share == 1.0
    assert {r.month for r in share.rows} == {timezone.localtime(timezone.now(), dt.timezone(dt.timedelta(hours=9))).strftime("%Y-%m")}
    assert share.total.revenue == 32_000 + 250_000


def test_the_share_follows_the_managers_units(sales, mina):
    share = membership_share.membership_share(make_filter(user=mina, period="30d"))
    assert [r.unit.code for r in share.by_unit] == ["seoul-hotel"]


def test_stamp_figures_count_stamps_rewards_and_uses(program, make_customer, units):
    reward = CouponTemplate.objects.create(name="Free Americano", kind=CouponKind.GIFT, value=0)
    card = StampCard.objects.create(unit=units["bakery"], name="Coffee", target=2, reward=reward,
                                    starts_at=timezone.now() - dt.timedelta(days=1))
    a, b = make_customer("bakery"), make_customer("bakery")
    stamps.stamp(actor=Actor.system("test"), customer=a, unit=units["bakery"], stamps=3)
    stamps.stamp(actor=Actor.system("test"), customer=b, unit=units["bakery"], stamps=1)
    now = timezone.now()
    [figures] = stamps.stamp_kpis(unit_ids=None, start=now - dt.timedelta(days=1), end=now + dt.timedelta(days=1))
    assert (figures["card"], figures["stamps"], figures["customers"], figures["rewards"], figures["rewards_used"]) == (
        card, 4, 2, 1, 0)


def test_the_dashboard_shows_the_member_share_and_stamp_figures(client, sales, alice, units, settings):
    settings.DANGOL_DASHBOARD_CACHE_SECONDS = 0
    reward = CouponTemplate.objects.create(name="Free Americano", kind=CouponKind.GIFT, value=0)
    StampCard.objects.create(unit=units["bakery"], name="Coffee", target=2, reward=reward)
    login(client, alice)
    page = client.get("/analytics/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    url = re.search(r'id="chart-membership" hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    html = client.get(url, HTTP_ACCEPT_LANGUAGE="en", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="chart-membership"' in html and 'data-testid="membership-unit-bakery"' in html
    assert "71.9%" in html and 'data-testid="stamp-kpis"' in html


def test_staff_do_not_get_the_member_share(client, bora):
    login(client, bora)
    assert client.get("/analytics/membership/").status_code == 403
