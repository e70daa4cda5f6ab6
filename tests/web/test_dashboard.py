"""The manager dashboard pages (charts as inline SVG with their numbers, CSV downloads, the segment list, lookalikes),
their permissions and scope and query counts, and the analysis panel of the 360° page."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse

from dangol.analytics.models import CustomerMetrics
from dangol.analytics.services import refresh_metrics
from dangol.core.audit import Actor
from dangol.sales.models import Category, Product

from tests.analytics.test_dashboard_data import business, metrics, sell  # noqa: F401 (business is a fixture)
from tests.analytics.test_recommendations import best_and_rest  # noqa: F401 (a fixture)
from tests.helpers import login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cache(settings):
    settings.DANGOL_DASHBOARD_CACHE_SECONDS = 0  # every request computes: the figures follow each test's data

@pytest.fixture(autouse=True)
def _english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"  # the assertions read the English source strings


PERIOD = {"period": "custom", "start": "2025-04-01", "end": "2025-06-30"}
CHARTS = ["trend", "rfm", "clv", "overlap", "cohorts", "pairs"]


def dashboard(client, **params):
    return client.get(reverse("web:analytics_dashboard"), {**PERIOD, **params})


def kpi(response, key: str) -> str:
    """The shown value of a KPI card."""
    return re.search(rf'data-testid="kpi-value-{key}"[^>]*>([^<]*)<', response.content.decode()).group(1)


def csv_rows(response) -> list[list[str]]:
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")  # Excel needs the byte-order mark to read UTF-8 Korean
    return list(csv.reader(io.StringIO(body[1:])))


# --- permissions ----------------------------------------------------------------------------------------------------

def test_it_needs_a_login(client, units):
    response = client.get(reverse("web:analytics_dashboard"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("web:login"))


def test_staff_get_403_everywhere(client, bora):
    login(client, bora)
    for url in (reverse("web:analytics_dashboard"), reverse("web:analytics_csv", args=["kpis"]),
                reverse("web:analytics_panel", args=["kpis"]),
                reverse("web:analytics_segment") + "?r=5&f=5", reverse("web:analytics_lookalikes")):
        response = client.get(url)
        assert response.status_code == 403, url
        assert b'data-testid="forbidden"' in response.content


def test_the_dashboard_link_is_for_managers_and_admins(client, alice, mina, bora):
    for user, visible in ((alice, True), (mina, True), (bora, False)):
        login(client, user)
        page = client.get(reverse("web:home")).content.decode()
        assert ('data-testid="nav-dashboard"' in page) is visible, user


# --- the page -------------------------------------------------------------------------------------------------------

def test_the_dashboard_draws_every_chart_with_its_numbers(client, alice, business):
    login(client, alice)
    response = dashboard(client)
    assert response.status_code == 200
    page = response.content.decode()
    for chart in CHARTS:
        svg = re.search(rf'<svg[^>]*data-testid="chart-svg-{chart}".*?</svg>', page, re.S)
        assert svg, chart
        assert "<title" in svg.group(0) and "<desc" in svg.group(0) and "<rect" in svg.group(0), chart
        assert f'data-testid="numbers-{chart}"' in page and f'data-testid="csv-{chart}"' in page
    assert (kpi(response, "revenue"), kpi(response, "active"), kpi(response, "top20_share")) == ("1,102,000원", "3", "74.1%")
    # The RFM cell of kim (R 5, F 4) links to its customers, with the filter kept.
    link = re.search(r'<a href="([^"]+)" data-testid="rfm-cell-5-4"', page).group(1).replace("&amp;", "&")
    assert link.startswith(reverse("web:analytics_segment")) and "r=5" in link and "f=4" in link and "start=2025-04-01" in link
    assert 'data-testid="rfm-cell-3-3"' not in page or 'href' not in page.split('data-testid="rfm-cell-3-3"')[0][-200:]
    assert "cdn" not in page.lower() and "<script src=\"http" not in page


def test_a_manager_sees_her_unit_only(client, mina, business):
    login(client, mina)
    response = dashboard(client)
    page = response.content.decode()
    assert kpi(response, "revenue") == "1,000,000원"
    form = response.context["form"]
    assert [code for code, _label in form.fields["unit"].choices] == ["", "seoul-hotel"]
    assert "한빛 베이커리" not in page  # no bakery in the overlap, the filter or anywhere
    # Asking for a unit that is not hers: the error shows, the figures stay hers.
    response = dashboard(client, unit="bakery")
    assert response.status_code == 200 and response.context["form"].errors["unit"]
    assert response.context["f"].unit_ids == (business["kim"].home_unit_id,)


def test_a_bad_period_shows_errors_next_to_the_fields(client, alice, business):
    login(client, alice)
    response = dashboard(client, start="2025-07-01", end="2025-06-01")
    assert response.status_code == 200
    assert response.context["form"].errors["end"] == ["The period ends before it starts."]
    assert response.context["f"].period == "12m"


def test_an_htmx_request_gets_the_filter_and_panels_only(client, alice, business):
    login(client, alice)
    response = client.get(reverse("web:analytics_dashboard"), {**PERIOD, "start": "2025-07-01"}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert "<html" not in page and 'id="dashboard"' in page and 'id="dashboard-panels"' in page
    assert "The period ends before it starts." in page  # the form comes back with its errors


def test_the_dashboard_page_runs_a_fixed_number_of_queries(client, alice, business, make_customer, units, products,
                                                           django_assert_num_queries):
    login(client, alice)
    dashboard(client)  # the session and the user are loaded once per request; warm nothing else
    with django_assert_num_queries(PAGE_QUERIES) as captured:
        dashboard(client)
    for i in range(4):
        someone = make_customer("bakery", name=f"손님{i}")
        sell(units["bakery"], someone, "2025-05-1%d" % i, (products["croissant"], 1), (products["baguette"], 1))
        metrics(someone, orders=1, r=4, f=1, m=1, clv=10_000, churn=0.2)
    with django_assert_num_queries(len(captured.captured_queries)):
        dashboard(client)


# session + user, the filter's units ×2 (form, filter), latest run, the size check (lazy panels or not), the
# dashboard's 16 (PostgreSQL: 17) queries
PAGE_QUERIES = 22 + (connection.vendor == "postgresql")


# --- CSV ------------------------------------------------------------------------------------------------------------

def test_every_chart_downloads_its_numbers_as_csv(client, alice, business):
    login(client, alice)
    for chart in CHARTS + ["kpis", "segments"]:
        response = client.get(reverse("web:analytics_csv", args=[chart]), PERIOD)
        assert response.status_code == 200, chart
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"] == f'attachment; filename="dangol-{chart}-group-2025-04-01-2025-06-30.csv"'
        assert len(csv_rows(response)) > 1, chart
    kpis = {row[0]: row for row in csv_rows(client.get(reverse("web:analytics_csv", args=["kpis"]), PERIOD))}
    assert kpis["revenue"][1:3] == ["1102000", "500000"]
    assert kpis["active"][1:4] == ["3", "2", "1"]
    rfm = {(row[0], row[1]): row for row in csv_rows(client.get(reverse("web:analytics_csv", args=["rfm"]), PERIOD))}
    assert rfm["5", "4"][2:] == ["champions", "1", "754500"]
    overlap = csv_rows(client.get(reverse("web:analytics_csv", args=["overlap"]), PERIOD))
    bakery_row = next(row for row in overlap if row[0] == "bakery")
    header = overlap[0]
    assert bakery_row[header.index("한빛호텔 서울")] == "2"
    cohorts = csv_rows(client.get(reverse("web:analytics_csv", args=["cohorts"]), PERIOD))
    assert cohorts[1][:5] == ["2025-04", "2", "1.0", "0.0", "0.5"]


def test_csv_follows_the_unit_scope_and_refuses_bad_input(client, mina, business):
    login(client, mina)
    response = client.get(reverse("web:analytics_csv", args=["kpis"]), PERIOD)
    assert response["Content-Disposition"].endswith('dangol-kpis-my-units-2025-04-01-2025-06-30.csv"')
    assert {row[0]: row for row in csv_rows(response)}["revenue"][1] == "1000000"
    assert client.get(reverse("web:analytics_csv", args=["kpis"]), {**PERIOD, "unit": "bakery"}).status_code == 400
    assert client.get(reverse("web:analytics_csv", args=["secrets"]), PERIOD).status_code == 404


# --- segments -------------------------------------------------------------------------------------------------------

def test_an_rfm_cell_lists_its_customers_masked(client, alice, business):
    login(client, alice)
    response = client.get(reverse("web:analytics_segment"), {**PERIOD, "r": "5", "f": "4"})
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('data-testid="segment-row"') == 1
    assert "김*준" in page and "김민준" not in page
    assert reverse("web:customer_detail", args=[business["kim"].pk]) in page
    named = client.get(reverse("web:analytics_segment"), {"segment": "lost"}).content.decode()
    assert "최*나" in named and named.count('data-testid="segment-row"') == 1


def test_a_segment_keeps_to_the_managers_units(client, mina, business):
    login(client, mina)
    page = client.get(reverse("web:analytics_segment"), {"r": "4", "f": "1"}).content.decode()
    assert 'data-testid="segment-row"' not in page and "이*연" not in page  # lee buys at the bakery only
    page = client.get(reverse("web:analytics_segment"), {"segment": "potential_loyalist"}).content.decode()
    assert "박*호" in page  # park stayed at the hotel


def test_a_segment_refuses_bad_cells(client, alice, business):
    login(client, alice)
    for params in ({"r": "9", "f": "1"}, {"r": "x", "f": "1"}, {"segment": "vip"}, {}):
        assert client.get(reverse("web:analytics_segment"), params).status_code == 400, params


def test_the_segment_list_runs_a_fixed_number_of_queries(client, alice, business, make_customer,
                                                         django_assert_num_queries):
    login(client, alice)
    url = reverse("web:analytics_segment")
    client.get(url, {"r": "5", "f": "4"})
    with django_assert_num_queries(6):  # session, user, units, count, page (metrics and unit joined), latest run? no
        client.get(url, {"r": "5", "f": "4"})
    for i in range(3):
        metrics(make_customer("bakery", name=f"우수{i}"), orders=9, r=5, f=4, m=5, clv=1_000_000, churn=0.1)
    with django_assert_num_queries(6):
        response = client.get(url, {"r": "5", "f": "4"})
    assert response.content.decode().count('data-testid="segment-row"') == 4


# --- the 360° panel -------------------------------------------------------------------------------------------------

@pytest.fixture
def refreshed(business):
    return refresh_metrics(actor=Actor.system("test"), as_of=dt.date(2025, 6, 30))


def test_the_360_page_explains_the_customers_metrics(client, mina, business, refreshed):
    login(client, mina)
    page = client.get(reverse("web:customer_detail", args=[business["kim"].pk])).content.decode()
    assert 'data-testid="analysis-panel"' in page
    for key in ("recency", "frequency", "monetary", "segment", "p_alive", "expected", "clv", "churn", "profit", "units"):
        assert f'data-testid="metric-{key}"' in page, key
    kim = CustomerMetrics.objects.get(customer=business["kim"])
    assert kim.orders == 4
    assert "Days since the last purchase" in page and "Customer lifetime value" in page
    assert "4 purchases" in page


def test_the_360_panel_suggests_products_of_the_viewers_units(client, mina, bora, alice, units, business, refreshed,
                                                             products, django_assert_max_num_queries):
    suites = Category.objects.get(unit=units["seoul-hotel"])
    suite = Product.objects.create(unit=units["seoul-hotel"], category=suites, sku="R-STE", name="스위트 룸", price=550000)
    login(client, mina)
    page = client.get(reverse("web:customer_detail", args=[business["kim"].pk])).content.decode()
    url = reverse("web:analytics_customer_suggestions", args=[business["kim"].pk])
    assert f'hx-get="{url}"' in page  # the suggestions come in a second request
    client.get(url)
    with django_assert_max_num_queries(12):
        found = client.get(url).content.decode()
    upsell = re.search(r'data-testid="upsell">(.*?)</ul>', found, re.S).group(1)
    assert suite.name in upsell and "550,000원" in upsell and "디럭스 룸" in upsell  # the step up from the room he had
    # park bought at the bakery and the hotel: mina only gets hotel suggestions, never bakery products.
    found = client.get(reverse("web:analytics_customer_suggestions", args=[business["park"].pk])).content.decode()
    assert "바게트" not in found and "크루아상" not in found
    # Outside the user's units the suggestions do not exist either.
    login(client, bora)
    assert client.get(reverse("web:analytics_customer_suggestions", args=[business["choi"].pk])).status_code == 404
    found = client.get(reverse("web:analytics_customer_suggestions", args=[business["lee"].pk])).content.decode()
    assert "원" not in re.search(r'data-testid="upsell">(.*?)</ul>', found, re.S).group(1)  # staff see no prices


def test_staff_see_behaviour_but_not_group_wide_amounts(client, bora, business, refreshed):
    login(client, bora)
    page = client.get(reverse("web:customer_detail", args=[business["lee"].pk])).content.decode()
    assert 'data-testid="metric-recency"' in page and 'data-testid="metric-segment"' in page
    for key in ("monetary", "clv", "profit"):
        assert f'data-testid="metric-{key}"' not in page


def test_a_customer_without_metrics_shows_a_note(client, alice, make_customer):
    login(client, alice)
    fresh = make_customer("bakery")
    page = client.get(reverse("web:customer_detail", args=[fresh.pk])).content.decode()
    assert 'data-testid="no-metrics"' in page


# --- lookalikes -----------------------------------------------------------------------------------------------------

def test_the_lookalikes_page_answers_without_a_model(client, mina, business):
    login(client, mina)
    response = client.get(reverse("web:analytics_lookalikes"))
    assert response.status_code == 200 and 'data-testid="no-model"' in response.content.decode()


def test_the_figures_are_kept_for_a_while(client, alice, business, settings, make_customer, units, products,
                                          django_assert_max_num_queries):
    settings.DANGOL_DASHBOARD_CACHE_SECONDS = 600
    cache.clear()
    login(client, alice)
    assert kpi(dashboard(client), "revenue") == "1,102,000원"
    sell(units["bakery"], None, "2025-05-20", (products["croissant"], 1))  # a sale after the figures were computed
    with django_assert_max_num_queries(7):  # session, user, units ×2, latest run, size check: no dashboard query
        assert kpi(dashboard(client), "revenue") == "1,102,000원"
    csv_revenue = {row[0]: row for row in csv_rows(client.get(reverse("web:analytics_csv", args=["kpis"]), PERIOD))}
    assert csv_revenue["revenue"][1] == "1102000"  # the CSV gives the figures the page shows
    cache.clear()
    assert kpi(dashboard(client), "revenue") == "1,106,500원"


def test_with_many_orders_the_panels_load_one_request_each(client, alice, business, settings,
                                                           django_assert_max_num_queries):
    settings.DANGOL_DASHBOARD_LAZY_ABOVE_ORDERS = 5  # the small business counts as large
    login(client, alice)
    with django_assert_max_num_queries(7):  # nothing computed: the page answers at once
        page = dashboard(client).content.decode()
    for name in ("kpis", "rfm", "clv", "overlap", "pairs", "cohorts"):
        assert f'data-testid="loading-{name}"' in page
        url = re.search(rf'id="panel-{name}"[^>]*hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
        part = client.get(url, HTTP_HX_REQUEST="true")
        assert part.status_code == 200 and f'id="panel-{name}"' in part.content.decode()
        assert "hx-trigger" not in part.content.decode()
    assert client.get(reverse("web:analytics_panel", args=["secrets"])).status_code == 404
    settings.DANGOL_DASHBOARD_CACHE_SECONDS = 600
    cache.clear()
    client.get(reverse("web:analytics_panel", args=["kpis"]), PERIOD)
    page = dashboard(client).content.decode()  # a panel computed meanwhile comes with the page
    assert 'data-testid="kpi-value-revenue"' in page and 'data-testid="loading-rfm"' in page


def test_the_lookalikes_page_lists_prospects_masked_with_their_reasons(client, alice, mina, best_and_rest):
    alike, unlike = best_and_rest
    login(client, alice)
    response = client.get(reverse("web:analytics_lookalikes"))
    page = response.content.decode()
    assert page.count('data-testid="lookalike-row"') == 2
    first = page.index('data-testid="lookalike-row"')
    assert "닮*꼴" in page[first:first + 400] and "닮은꼴" not in page  # the best match first, masked
    assert "lives in 강남구" in page and 'data-testid="traits"' in page
    login(client, mina)
    page = client.get(reverse("web:analytics_lookalikes")).content.decode()
    assert "다*꼴" not in page  # a bakery prospect is not hers
