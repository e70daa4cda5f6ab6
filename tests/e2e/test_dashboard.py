"""The manager dashboard in real headless Chromium, at a phone's 360 px and at a desktop width: every chart is drawn
(inline SVG with marks), the filter form swaps the panels in place, the numbers open under each chart, an RFM cell
opens its customers, and nothing scrolls sideways."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from dangol.analytics.models import ModelRun
from dangol.sales.models import Category, Product

from tests.analytics.test_dashboard_data import business, sell  # noqa: F401 (business is a fixture)
from tests.e2e.support import assert_no_horizontal_scroll, login, mark_document, still_same_document

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_cache(settings):
    settings.DANGOL_DASHBOARD_CACHE_SECONDS = 0  # every request computes: the figures follow each test's data

DESKTOP = {"viewport": {"width": 1280, "height": 900}, "is_mobile": False, "has_touch": False, "device_scale_factor": 1}
WIDTHS = {"360px": None, "desktop": DESKTOP}
CHARTS = ["trend", "rfm", "clv", "overlap", "cohorts", "pairs"]


@pytest.fixture
def hotel_baskets(units, products, business):
    """Walk-in orders at the Seoul hotel so that its rooms and breakfast make a cross-sell pair in the period."""
    hotel = units["seoul-hotel"]
    dining = Category.objects.create(name="식음료", unit=hotel)
    breakfast = Product.objects.create(unit=hotel, category=dining, sku="F-BRK", name="조식 뷔페", price=49_000)
    spa = Product.objects.create(unit=hotel, category=dining, sku="F-SPA", name="사우나", price=45_000)
    for day in ("2025-05-11", "2025-05-12", "2025-05-13"):
        sell(hotel, None, day, (products["deluxe"], 1), (breakfast, 1))
    for day in ("2025-05-14", "2025-05-15"):
        sell(hotel, None, day, (spa, 1))
    moment = dt.datetime(2025, 7, 1, 3, tzinfo=dt.timezone.utc)
    ModelRun.objects.create(as_of=dt.date(2025, 6, 30), started_at=moment, finished_at=moment, seconds=1.0, customers=5,
                            discount_rate_monthly=0.01)
    return business


def choose_period(page, start: str, end: str) -> None:
    form = page.get_by_test_id("dashboard-filter")
    form.locator("select[name=period]").select_option("custom")
    form.locator("input[name=start]").fill(start)
    form.locator("input[name=end]").fill(end)
    form.get_by_test_id("apply-filter").click()


def expect_every_chart_drawn(page) -> None:
    for chart in CHARTS:
        svg = page.get_by_test_id(f"chart-svg-{chart}")
        expect(svg).to_be_visible()
        box = svg.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 20, chart
        drawn = svg.evaluate("s => [...s.querySelectorAll('rect')].filter(r => r.getBBox().width > 0 && r.getBBox().height > 0).length")
        assert drawn > 0, f"{chart} has no visible marks"
        assert svg.locator("title").first.text_content()


@pytest.mark.parametrize("width", list(WIDTHS))
def test_a_manager_reads_the_dashboard_and_opens_an_rfm_cell(new_page, live_server, mina, hotel_baskets, screenshot, width):
    options = WIDTHS[width]
    page = new_page(**options) if options else new_page()
    check_width = 1280 if options else 360
    login(page, live_server, "mina")

    page.get_by_test_id("nav-dashboard").click()
    expect(page).to_have_url(f"{live_server.url}/analytics/")
    expect(page.get_by_test_id("kpi-revenue")).to_be_visible()
    mark_document(page)
    choose_period(page, "2025-04-01", "2025-06-30")
    expect(page).to_have_url(re.compile(r"/analytics/\?.*start=2025-04-01"))  # the filter is in the address
    # mina's hotel: kim and park 1,000,000, walk-ins 3 × (250,000 + 49,000) + 2 × 45,000.
    expect(page.get_by_test_id("kpi-value-revenue")).to_have_text("1,987,000원")
    assert still_same_document(page)  # htmx swapped the panels in place
    expect(page.get_by_test_id("kpi-value-active")).to_have_text("2")
    expect(page.get_by_test_id("dashboard-filter")).to_contain_text("Showing 2025-04-01 – 2025-06-30")
    expect(page.get_by_test_id("snapshot")).to_contain_text("2025-06-30")
    expect_every_chart_drawn(page)
    expect(page.get_by_test_id("chart-pairs")).to_contain_text("디럭스 룸 + 조식 뷔페")
    expect(page.get_by_test_id("chart-overlap")).not_to_contain_text("한빛 베이커리")  # her unit only
    assert_no_horizontal_scroll(page, check_width)

    # The numbers of a chart open under it, as a table.
    numbers = page.get_by_test_id("numbers-clv")
    numbers.locator("summary").click()
    expect(numbers.locator("table")).to_be_visible()
    expect(numbers.locator("tbody tr")).to_have_count(9)
    assert_no_horizontal_scroll(page, check_width)
    screenshot(page, f"dashboard-{width}")

    # The CSV of a chart downloads with the same filter.
    with page.expect_download() as download:
        page.get_by_test_id("csv-kpis").click()
    assert download.value.suggested_filename == "dangol-kpis-my-units-2025-04-01-2025-06-30.csv"

    # kim (R 5, F 4) is a champion: his cell opens the list of its customers, masked.
    page.get_by_test_id("rfm-cell-5-4").click()
    expect(page).to_have_url(re.compile(r"/analytics/segment/\?.*r=5.*f=4"))
    rows = page.get_by_test_id("segment-row")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("김*준")
    assert "김민준" not in page.content()
    assert_no_horizontal_scroll(page, check_width)
    screenshot(page, f"dashboard-segment-{width}")
    rows.get_by_role("link").click()
    expect(page).to_have_url(f"{live_server.url}/customers/{hotel_baskets['kim'].pk}/")
    expect(page.get_by_test_id("analysis-panel")).to_be_visible()
    expect(page.get_by_test_id("metric-segment")).to_contain_text("Champions")
    expect(page.get_by_test_id("suggestions")).to_be_visible()  # loaded by htmx after the page
    expect(page.get_by_test_id("upsell")).to_be_visible()


def test_an_admin_sees_the_whole_group_at_desktop_width(new_page, live_server, alice, hotel_baskets, screenshot):
    page = new_page(**DESKTOP)
    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/analytics/?period=custom&start=2025-04-01&end=2025-06-30")
    expect_every_chart_drawn(page)
    overlap = page.get_by_test_id("chart-overlap")
    for unit in ("한빛호텔 서울", "한빛 베이커리", "한빛호텔 부산", "한빛 레스토랑"):
        expect(overlap).to_contain_text(unit)
    expect(page.get_by_test_id("legend-rfm")).to_contain_text("Champions")
    assert_no_horizontal_scroll(page, 1280)
    screenshot(page, "dashboard-admin-desktop")
    # Choosing a unit narrows every figure to it, the choice kept in the form.
    page.get_by_test_id("dashboard-filter").locator("select[name=unit]").select_option("bakery")
    page.get_by_test_id("apply-filter").click()
    # The bakery: kim 4,500, lee 9,500 + 5,000 − 5,000 (refund), park 4,500, walk-ins 83,500.
    expect(page.get_by_test_id("kpi-value-revenue")).to_have_text("102,000원")
    expect(page.get_by_test_id("dashboard-filter").locator("select[name=unit]")).to_have_value("bakery")


def test_staff_are_kept_out(new_page, live_server, bora, hotel_baskets):
    page = new_page()
    login(page, live_server, "bora")
    expect(page.get_by_test_id("nav-dashboard")).to_have_count(0)
    page.goto(f"{live_server.url}/analytics/")
    expect(page.get_by_test_id("forbidden")).to_be_visible()


def test_with_many_orders_the_panels_arrive_one_by_one(new_page, live_server, mina, hotel_baskets, settings, screenshot):
    settings.DANGOL_DASHBOARD_LAZY_ABOVE_ORDERS = 5  # the small business counts as large: placeholders, then htmx
    page = new_page()
    login(page, live_server, "mina")
    page.goto(f"{live_server.url}/analytics/?period=custom&start=2025-04-01&end=2025-06-30")
    expect_every_chart_drawn(page)
    expect(page.get_by_test_id("kpi-value-revenue")).to_have_text("1,987,000원")
    expect(page.locator("[data-testid^=loading-]")).to_have_count(0)
    assert_no_horizontal_scroll(page, 360)
