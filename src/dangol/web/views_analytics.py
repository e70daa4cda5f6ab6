"""Pages of customer analysis, for managers and admins: the dashboard, the customers of an RFM cell or segment, and
lookalike prospects; plus the analysis panel of the customer's 360° page (every role that sees the customer).

Charts are inline SVG drawn here on the server (no chart library, nothing from a CDN): each is a title and a
description for screen readers, its marks, its numbers as a table in a <details> next to it, and a CSV download of
the same numbers. The geometry below turns the dashboard's data into rectangles and text in a fixed viewBox that
the browser scales to the card's width."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import wraps
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import formats, translation
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from dangol.analytics import dashboard as data
from dangol.analytics import membership_share
from dangol.analytics import recommendations as rec
from dangol.analytics import selectors as analytics_selectors
from dangol.analytics.models import RfmSegment
from dangol.analytics.rfm import DESCRIPTIONS, SEGMENT_GRID
from dangol.core.masking import mask_name
from dangol.core.selectors import units_for
from dangol.customers.selectors import customers_for
from dangol.sales.models import Product

from .panels import Panel, customer_panel, nav_link
from .templatetags.dangol import won

PAGE_SIZE = 50


def may_see_dashboard(user) -> bool:
    return bool(user.is_authenticated and (user.sees_all_units or user.role == "manager"))


nav_link("web:analytics_dashboard", gettext_lazy("Dashboard"), who=may_see_dashboard, testid="nav-dashboard")


def manager_required(view):
    """Logged in, and a manager or an admin: staff get a 403 page."""
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not may_see_dashboard(request.user):
            return render(request, "web/analytics/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return wrapped


# --- the filter form ------------------------------------------------------------------------------------------------

class FilterForm(forms.Form):
    unit = forms.ChoiceField(label=gettext_lazy("Business unit"), required=False)
    period = forms.ChoiceField(label=gettext_lazy("Period"), required=False,
                               choices=[(key, label) for key, label in data.PERIODS.items()])
    start = forms.DateField(label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, user, units, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        everyone = _("Whole group") if user.sees_all_units else _("All my business units")
        self.fields["unit"].choices = [("", everyone)] + [(u.code, u.name) for u in units]
        self.fields["period"].initial = data.DEFAULT_PERIOD
        self.filter: data.DashboardFilter | None = None

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        period = cleaned.get("period") or ""
        if cleaned.get("start") or cleaned.get("end"):
            period = "custom"  # dates typed in mean these dates, whatever the list still says
            self.data = self.data.copy()
            self.data["period"] = "custom"
        if period == "custom":
            for name in ("start", "end"):
                if not cleaned.get(name):
                    self.add_error(name, _("Give both dates of a custom period."))
            if self.errors:
                return cleaned
        try:
            self.filter = data.make_filter(user=self.user, unit=cleaned.get("unit") or "", period=period,
                                           start=cleaned.get("start"), end=cleaned.get("end"))
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                for message in messages:
                    self.add_error(name if name in self.fields else None, message)
        return cleaned


def _filter(request) -> tuple[FilterForm, data.DashboardFilter]:
    """The filter of the request; with errors, the form shows them and the figures use the default filter."""
    units = list(units_for(request.user).order_by("name"))
    params = request.GET if any(k in request.GET for k in ("unit", "period", "start", "end")) else None
    form = FilterForm(params, user=request.user, units=units)
    if form.is_bound and form.is_valid() and form.filter is not None:
        return form, form.filter
    return form, data.make_filter(user=request.user)


def _query(flt: data.DashboardFilter, **extra) -> str:
    return urlencode({**flt.params(), **{k: v for k, v in extra.items() if v not in (None, "")}})


# --- number formatting ----------------------------------------------------------------------------------------------

def compact_won(value) -> str:
    """Short amounts for chart labels: 1.2억 / 350만 in Korean, 120M / 3.5K otherwise."""
    value = int(value or 0)
    sign, v = ("-" if value < 0 else ""), abs(value)
    if (get_language() or "").startswith("ko"):
        steps = ((100_000_000, "억"), (10_000, "만"))
    else:
        steps = ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K"))
    for size, suffix in steps:
        if v >= size:
            number = v / size
            text = f"{number:.1f}" if number < 10 else f"{number:,.0f}"
            return sign + text.removesuffix(".0") + suffix
    return sign + f"{v:,}"


def decimal(value: float, digits: int = 1) -> str:
    """A localised number with ``digits`` decimals, rounded (Django's number_format cuts floats off instead)."""
    return formats.number_format(round(value, digits), digits)


def big_won(value) -> str:
    """An amount for a KPI card: exact below 100 million won, shortened above (the table has it exact)."""
    if value is None:
        return "—"
    return won(value) if abs(value) < 100_000_000 else compact_won(value) + "원"


def percent(value, digits: int = 1) -> str:
    if value is None:
        return "—"
    return decimal(value * 100, digits) + "%"


def number(value) -> str:
    return "—" if value is None else formats.number_format(value, force_grouping=True)


# --- chart geometry -------------------------------------------------------------------------------------------------

@dataclass
class Cell:
    """A table cell: what the CSV gets (raw) and what the page shows."""
    raw: object
    shown: str = ""

    def __post_init__(self):
        if not self.shown:
            self.shown = "" if self.raw is None else str(self.raw)


@dataclass
class Chart:
    key: str
    title: str
    desc: str
    width: int
    height: int
    head: list[str]
    rows: list[list[Cell]]
    csv_url: str
    rects: list[dict] = field(default_factory=list)
    texts: list[dict] = field(default_factory=list)
    lines: list[dict] = field(default_factory=list)
    legend: list[dict] = field(default_factory=list)
    note: str = ""
    wide: bool = False  # scrolls sideways inside its card on a phone instead of shrinking its text
    empty: bool = False
    empty_text: str = ""
    summary: str = ""  # the label of its numbers' <details>; "Numbers" when empty
    extra: "Chart | None" = None  # a second table shown in the same card


LIGHT, DARK = (236, 246, 241), (11, 110, 79)
SEGMENT_COLOURS = {
    "champions": "#1b7f5a", "loyal": "#4caf7d", "potential_loyalist": "#9bd3ae", "new": "#bfe3f5",
    "promising": "#8cc8ea", "need_attention": "#f6d77b", "about_to_sleep": "#f3b562", "at_risk": "#e8825f",
    "cant_lose": "#c4473a", "hibernating": "#b9b4c9", "lost": "#8e8aa3",
}
DARK_SEGMENTS = {"champions", "cant_lose", "lost"}


def heat(value: float, top: float) -> tuple[str, str]:
    """Fill colour of a heatmap cell (light to the accent green) and a readable text colour on it."""
    t = 0.0 if not top else max(0.0, min(1.0, value / top)) ** 0.7
    rgb = tuple(round(a + (b - a) * t) for a, b in zip(LIGHT, DARK))
    return "#%02x%02x%02x" % rgb, ("#ffffff" if t > 0.55 else "#1d2330")


def _r(x: float) -> float:
    return round(x, 1)


def _text(x, y, text, *, anchor="middle", size=11, weight="", fill="", rotate=None, cls="") -> dict:
    return {"x": _r(x), "y": _r(y), "text": text, "anchor": anchor, "size": size, "weight": weight, "fill": fill,
            "transform": f"rotate({rotate} {_r(x)} {_r(y)})" if rotate is not None else "", "cls": cls}


def vertical_bars(values: list[float], labels: list[str], value_labels: list[str], titles: list[str], *,
                  width: int = 360, height: int = 190, label_every: int = 1) -> tuple[list, list, list]:
    """Bars from a baseline, a label under every ``label_every``-th bar and its value above it when there is room."""
    left, right, top, bottom = 6, 6, 18, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([v for v in values if v > 0], default=0)
    slot = plot_w / max(len(values), 1)
    bar_w = max(1.0, slot * 0.72)
    rects, texts = [], []
    for i, (value, label, shown, title) in enumerate(zip(values, labels, value_labels, titles)):
        h = 0 if not peak else max(0.0, value) / peak * plot_h
        x = left + i * slot + (slot - bar_w) / 2
        rects.append({"x": _r(x), "y": _r(top + plot_h - h), "w": _r(bar_w), "h": _r(max(h, 0.5 if value else 0)),
                      "fill": "#0b6e4f", "title": title})
        if i % label_every == 0:
            texts.append(_text(x + bar_w / 2, height - bottom + 14, label, size=10, fill="#667085"))
            if slot >= 26 and shown:
                texts.append(_text(x + bar_w / 2, top + plot_h - h - 4, shown, size=10))
    lines = [{"x1": left, "y1": top + plot_h, "x2": width - right, "y2": top + plot_h, "stroke": "#98a2b3"}]
    return rects, texts, lines


def sparkline(values: list[float], *, width: int = 120, height: int = 32) -> str:
    """The points of a polyline through the values (for a KPI's trend)."""
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1
    step = width / (len(values) - 1)
    return " ".join(f"{_r(i * step)},{_r(height - 2 - (v - low) / span * (height - 4))}" for i, v in enumerate(values))


# --- the charts -----------------------------------------------------------------------------------------------------

def _csv_url(f, chart: str) -> str:
    return reverse("web:analytics_csv", args=[chart]) + "?" + _query(f)


def kpi_cards(kpis: data.Kpis) -> list[dict]:
    revenue = [p.revenue for p in kpis.series]
    active = [p.active for p in kpis.series]
    cards = []
    for k in kpis.items:
        if k.kind == "won":
            shown, before = big_won(k.value), (big_won(k.previous) if k.previous is not None else "")
        elif k.kind == "share":
            shown, before = percent(k.value), (percent(k.previous) if k.previous is not None else "")
        else:
            shown, before = number(k.value), (number(k.previous) if k.previous is not None else "")
        if k.change is None:
            change = ""
        elif k.kind == "share":
            change = decimal(k.change * 100, 1) + _(" pp")
        elif k.change_ratio is not None:
            change = percent(k.change_ratio)
        else:
            change = number(k.change) if k.kind == "count" else won(k.change)
        spark = sparkline(revenue) if k.key == "revenue" else sparkline(active) if k.key == "active" else ""
        cards.append({"kpi": k, "shown": shown, "before": before, "change": change, "spark": spark})
    return cards


def kpi_table(f, kpis: data.Kpis) -> Chart:
    rows = []
    for card in kpi_cards(kpis):
        k = card["kpi"]
        rows.append([Cell(k.key, k.label), Cell(k.value, card["shown"]), Cell(k.previous, card["before"] or "—"),
                     Cell(k.change, card["change"] or "—")])
    return Chart("kpis", _("Key figures"), _("Key figures of the period against the previous period."), 0, 0,
                 [_("Figure"), _("This period"), _("Previous period"), _("Change")], rows, _csv_url(f, "kpis"))


def trend_chart(f, kpis: data.Kpis) -> Chart:
    points = kpis.series
    month = kpis.grain == "month"
    labels = [(p.start.strftime("%y-%m") if month else p.start.strftime("%m-%d")) for p in points]
    every = 1 if len(points) <= 12 else max(2, round(len(points) / (8 if month else 7)))
    rects, texts, lines = vertical_bars(
        [p.revenue for p in points], labels, [compact_won(p.revenue) for p in points],
        [f"{label}: {won(p.revenue)} · {_('%(n)s active customers') % {'n': number(p.active)}}"
         for label, p in zip(labels, points)], label_every=every)
    rows = [[Cell(p.start.isoformat()), Cell(p.revenue, won(p.revenue)), Cell(p.active, number(p.active))] for p in points]
    title = _("Revenue by month") if month else _("Revenue by day")
    return Chart("trend", title, _("Revenue (sales minus refunds) of each step of the period, as bars; active customers "
                                   "in the table."), 360, 190, [_("From"), _("Revenue"), _("Active customers")], rows,
                 _csv_url(f, "trend"), rects=rects, texts=texts, lines=lines,
                 empty=not any(p.revenue for p in points), empty_text=_("No sales in this period."))


def rfm_chart(f, grid: data.RfmGrid) -> Chart:
    left, top, cw, ch = 30, 8, 64, 50
    rects, texts = [], []
    for row_index, row in enumerate(grid.rows):
        for col_index, cell in enumerate(row):
            x, y = left + col_index * cw, top + row_index * ch
            fill = SEGMENT_COLOURS[cell.segment]
            ink = "#ffffff" if cell.segment in DARK_SEGMENTS else "#1d2330"
            href = (reverse("web:analytics_segment") + "?" + _query(f, r=cell.r, f=cell.f)) if cell.customers else ""
            title = _("R %(r)d · F %(f)d · %(segment)s: %(n)s customers, %(revenue)s in the period") % {
                "r": cell.r, "f": cell.f, "segment": cell.segment_label, "n": number(cell.customers),
                "revenue": won(cell.revenue)}
            rects.append({"x": x + 1, "y": y + 1, "w": cw - 2, "h": ch - 2, "fill": fill, "title": title, "href": href,
                          "testid": f"rfm-cell-{cell.r}-{cell.f}", "texts": [
                              _text(x + cw / 2, y + 22, number(cell.customers), size=14, weight="700", fill=ink),
                              _text(x + cw / 2, y + 38, compact_won(cell.revenue) if cell.revenue else "", size=10, fill=ink)]})
    for i in range(5):
        texts.append(_text(left - 10, top + i * ch + ch / 2 + 4, str(5 - i), size=11, fill="#667085"))
        texts.append(_text(left + i * cw + cw / 2, top + 5 * ch + 14, str(i + 1), size=11, fill="#667085"))
    texts.append(_text(8, top + 2.5 * ch, _("Recency score (5 = most recent)"), size=10, fill="#667085", rotate=-90))
    texts.append(_text(left + 2.5 * cw, top + 5 * ch + 30, _("Frequency score (5 = most frequent)"), size=10, fill="#667085"))
    rows = [[Cell(c.r), Cell(c.f), Cell(c.segment, c.segment_label), Cell(c.customers, number(c.customers)),
             Cell(c.revenue, won(c.revenue))] for c in grid.cells]
    legend = [{"segment": s.segment, "label": s.label, "colour": SEGMENT_COLOURS[s.segment], "customers": s.customers,
               "shown": number(s.customers), "revenue": won(s.revenue), "description": s.description,
               "href": reverse("web:analytics_segment") + "?" + _query(f, segment=s.segment)} for s in grid.segments]
    return Chart("rfm", _("RFM grid"), _("Customers by recency score (rows, 5 at the top) and frequency score "
                                         "(columns): the number of customers and their revenue in the period per cell, "
                                         "coloured by segment. A cell opens its customers."),
                 360, 290, [_("R"), _("F"), _("Segment"), _("Customers"), _("Revenue")], rows, _csv_url(f, "rfm"),
                 rects=rects, texts=texts, legend=legend, empty=not grid.customers,
                 empty_text=_("No scores yet: the analytics snapshot has no customer with a purchase here."))


def segments_table(f, grid: data.RfmGrid) -> Chart:
    rows = [[Cell(s.segment, s.label), Cell(s.customers, number(s.customers)), Cell(s.revenue, won(s.revenue))]
            for s in grid.segments]
    return Chart("segments", _("RFM segments"), "", 0, 0, [_("Segment"), _("Customers"), _("Revenue")], rows,
                 _csv_url(f, "segments"), summary=_("Segments: customers and revenue"))


def cohort_chart(f, cohorts: data.Cohorts) -> Chart:
    left, top, cw, ch = 84, 22, 38, 24
    offsets = cohorts.offsets
    rects, texts = [], []
    for k in range(offsets):
        texts.append(_text(left + k * cw + cw / 2, top - 8, f"+{k}", size=10, fill="#667085"))
    for i, row in enumerate(cohorts.rows):
        y = top + i * ch
        texts.append(_text(left - 6, y + ch / 2 + 4, f"{row.month:%Y-%m} ({number(row.size)})", anchor="end", size=10))
        for k, (n, rate) in enumerate(zip(row.retained, row.rates)):
            if n is None:
                continue
            fill, ink = heat(rate or 0, 1.0 if k == 0 else 0.5)
            if k == 0:
                fill, ink = "#d0d5dd", "#1d2330"
            rects.append({"x": left + k * cw + 1, "y": y + 1, "w": cw - 2, "h": ch - 2, "fill": fill,
                          "title": _("%(month)s cohort, %(k)d months later: %(n)s of %(size)s (%(rate)s)") % {
                              "month": f"{row.month:%Y-%m}", "k": k, "n": number(n), "size": number(row.size),
                              "rate": percent(rate)},
                          "texts": [_text(left + k * cw + cw / 2, y + ch / 2 + 4,
                                          percent(rate, 0) if row.size else "", size=10, fill=ink)]})
    head = [_("First purchase"), _("Customers")] + [f"+{k}" for k in range(offsets)]
    rows = [[Cell(f"{r.month:%Y-%m}"), Cell(r.size, number(r.size))]
            + [Cell(None if rate is None else round(rate, 4), "" if rate is None else percent(rate)) for rate in r.rates]
            for r in cohorts.rows]
    height = top + max(len(cohorts.rows), 1) * ch + 6
    return Chart("cohorts", _("Monthly cohort retention"),
                 _("Customers by the month of their first purchase (rows); each cell is the share of them who bought "
                   "again that many months later."), left + offsets * cw + 4, height, head, rows, _csv_url(f, "cohorts"),
                 rects=rects, texts=texts, wide=True, empty=not any(r.size for r in cohorts.rows),
                 empty_text=_("No first purchases in this period."))


def clv_chart(f, histogram: data.Histogram) -> Chart:
    labels = [compact_won(b.low) + ("+" if b.high is None else "") for b in histogram.bins]
    ranges = [(f"{won(b.low)} – {won(b.high)}" if b.high is not None else f"{won(b.low)} +") for b in histogram.bins]
    rects, texts, lines = vertical_bars(
        [b.customers for b in histogram.bins], labels, [number(b.customers) for b in histogram.bins],
        [_("%(range)s: %(n)s customers") % {"range": r, "n": number(b.customers)} for r, b in zip(ranges, histogram.bins)])
    rows = [[Cell(b.low, won(b.low)), Cell(b.high, won(b.high) if b.high is not None else "—"),
             Cell(b.customers, number(b.customers)), Cell(b.clv_total, won(b.clv_total))] for b in histogram.bins]
    return Chart("clv", _("CLV distribution"), _("Customers with a purchase by their expected value over the next 12 "
                                                 "months (CLV), from the analytics snapshot."), 360, 190,
                 [_("From"), _("Below"), _("Customers"), _("Total CLV")], rows, _csv_url(f, "clv"),
                 rects=rects, texts=texts, lines=lines, empty=not histogram.customers,
                 empty_text=_("No CLV yet: the analytics snapshot has no customer with a purchase here."))


def overlap_chart(f, overlap: data.Overlap) -> Chart:
    n = len(overlap.units)
    left, top = 104, 74
    cell = min(60, max(34, (360 - left - 4) // max(n, 1)))
    rects, texts = [], []
    for j, unit in enumerate(overlap.units):
        texts.append(_text(left + j * cell + cell / 2 - 2, top - 6, unit.name, anchor="start", size=10, rotate=-40))
    for i, (unit, row) in enumerate(overlap.rows()):
        y = top + i * cell
        texts.append(_text(left - 6, y + cell / 2 + 4, unit.name, anchor="end", size=10))
        for j, count in enumerate(row):
            if i == j:
                fill, ink = "#d0d5dd", "#1d2330"
                title = _("%(unit)s: %(n)s customers bought here") % {"unit": unit.name, "n": number(count)}
            else:
                fill, ink = heat(count, overlap.max_shared)
                title = _("%(n)s customers bought at %(a)s and at %(b)s") % {
                    "n": number(count), "a": unit.name, "b": overlap.units[j].name}
            rects.append({"x": left + j * cell + 1, "y": y + 1, "w": cell - 2, "h": cell - 2, "fill": fill, "title": title,
                          "texts": [_text(left + j * cell + cell / 2, y + cell / 2 + 4, compact_number(count), size=11, fill=ink)]})
    rows = [[Cell(unit.code, unit.name)] + [Cell(c, number(c)) for c in row] for unit, row in overlap.rows()]
    return Chart("overlap", _("Customers shared between business units"),
                 _("Customers who bought at the unit of the row and at the unit of the column in the period; the "
                   "diagonal counts the unit's own customers."), left + n * cell + 44, top + n * cell + 6,
                 [_("Business unit")] + [u.name for u in overlap.units], rows, _csv_url(f, "overlap"), rects=rects,
                 texts=texts, note=_("%(multi)s of %(all)s customers bought at two business units or more.") % {
                     "multi": number(overlap.multi_unit), "all": number(overlap.customers)},
                 empty=not overlap.customers, empty_text=_("No customers bought in this period."))


def compact_number(value: int) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}K" if value < 1_000_000 else f"{value / 1_000_000:.1f}M"
    return number(value)


def pairs_chart(f, pairs: data.TopPairs) -> Chart:
    """Bars measure how far above chance each pair is: from 1× (no association) at the left edge to the strongest."""
    left, row_h, width, top = 4, 44, 360, 4
    bar_max = width - left - 64
    span = max(pairs.max_lift - 1, 1e-9)
    rects, texts = [], []
    for i, row in enumerate(pairs.rows):
        y = top + i * row_h
        p = row.pair
        texts.append(_text(left, y + 14, f"{row.first.name} + {row.second.name}", anchor="start", size=11))
        w = max(2.0, bar_max * (p.lift - 1) / span)
        rects.append({"x": left, "y": y + 20, "w": _r(w), "h": 14, "fill": "#0b6e4f",
                      "title": _("%(a)s and %(b)s: in %(n)s orders together, lift %(lift)s") % {
                          "a": row.first.name, "b": row.second.name, "n": number(p.together),
                          "lift": decimal(p.lift, 2)}})
        texts.append(_text(left + w + 6, y + 31, "×" + decimal(p.lift, 2), anchor="start", size=11, weight="600"))
    height = top + max(len(pairs.rows), 1) * row_h + 18
    lines = [{"x1": left, "y1": top + 18, "x2": left, "y2": height - 16, "stroke": "#98a2b3"}] if pairs.rows else []
    if pairs.rows:
        texts.append(_text(left, height - 4, _("left edge = 1× (chance)"), anchor="start", size=10, fill="#667085"))
    rows = [[Cell(r.first.name), Cell(r.second.name), Cell(r.first.unit.name), Cell(r.pair.together, number(r.pair.together)),
             Cell(round(r.pair.support, 5), percent(r.pair.support, 2)),
             Cell(round(r.pair.confidence_first_to_second, 4), percent(r.pair.confidence_first_to_second)),
             Cell(round(r.pair.confidence_second_to_first, 4), percent(r.pair.confidence_second_to_first)),
             Cell(round(r.pair.lift, 4), decimal(r.pair.lift, 2))] for r in pairs.rows]
    note = ""
    if pairs.sampled:
        note = _("Estimated from a sample of %(n)s of %(all)s orders.") % {
            "n": number(pairs.baskets), "all": number(pairs.total_baskets)}
    return Chart("pairs", _("Top cross-sell pairs"),
                 _("Products bought in the same order more often than chance, by lift: how many times more often than "
                   "if they were bought independently at their business unit."), width, height,
                 [_("Product"), _("With"), _("Business unit"), _("Orders together"), _("Support"), _("Confidence →"),
                  _("Confidence ←"), _("Lift")], rows, _csv_url(f, "pairs"), rects=rects, texts=texts, lines=lines,
                 note=note, empty=not pairs.rows,
                 empty_text=_("No pair of products is bought together more often than chance in this period."))


# --- pages ----------------------------------------------------------------------------------------------------------

PANEL_TITLES = {"kpis": gettext_lazy("Key figures"), "rfm": gettext_lazy("RFM grid"),
                "cohorts": gettext_lazy("Monthly cohort retention"), "clv": gettext_lazy("CLV distribution"),
                "overlap": gettext_lazy("Customers shared between business units"),
                "pairs": gettext_lazy("Top cross-sell pairs")}


def panel_context(f, name: str, computed: data.Computed) -> dict:
    """What the template of a panel shows: its charts, built from the panel's data."""
    found = computed.data
    if name == "kpis":
        return {"cards": kpi_cards(found), "kpi_table": kpi_table(f, found), "trend": trend_chart(f, found)}
    if name == "rfm":
        chart, segments = rfm_chart(f, found), segments_table(f, found)
        chart.extra = segments
        return {"chart": chart, "segments": segments}
    build = {"cohorts": cohort_chart, "clv": clv_chart, "overlap": overlap_chart, "pairs": pairs_chart}[name]
    return {"chart": build(f, found)}


def _panel_url(f, name: str) -> str:
    return reverse("web:analytics_panel", args=[name]) + "?" + _query(f)


@manager_required
@require_GET
def dashboard(request):
    """The dashboard. With many orders, panels not computed yet come as placeholders that htmx fills in, one
    request each, so that the page answers at once and each panel's wait stays short."""
    form, f = _filter(request)
    run = analytics_selectors.latest_run()
    run_id = run.pk if run else None
    if data.loads_lazily():
        found = data.cached_panels(f, run_id=run_id)
    else:
        found = data.panels(f, run_id=run_id)
    shown = {name: {"name": name, "title": PANEL_TITLES[name], "ready": name in found, "url": _panel_url(f, name),
                    **(panel_context(f, name, found[name]) if name in found else {})} for name in data.PANELS}
    computed_at = min((c.computed_at for c in found.values()), default=None)
    context = {"form": form, "f": f, "run": run, "panels": shown, "computed_at": computed_at,
               "lookalikes_url": reverse("web:analytics_lookalikes") + "?" + _query(f)}
    context["membership_url"] = reverse("web:analytics_membership") + "?" + _query(f)  # loads after the page (htmx)
    template = "web/analytics/_dashboard.html" if request.htmx else "web/analytics/dashboard.html"
    return render(request, template, context)


@manager_required
@require_GET
def dashboard_panel(request, name: str):
    """One panel of the dashboard (what a placeholder loads)."""
    if name not in data.PANELS:
        raise Http404
    form, f = _filter(request)
    run = analytics_selectors.latest_run()
    computed = data.panels(f, run_id=run.pk if run else None, names=[name])[name]
    panel = {"name": name, "title": PANEL_TITLES[name], "ready": True, **panel_context(f, name, computed)}
    return render(request, "web/analytics/_panel.html", {"panel": panel, "f": f})


def membership_context(f) -> dict:
    """The members' share of revenue per unit (and month) and the stamp card figures (membership_share.py)."""
    share, stamps = membership_share.cached(f)

    def shown(row) -> dict:
        return {"row": row, "share": percent(row.share), "width": round((row.share or 0) * 100, 1)}

    from dangol.gatherings.services import event_kpis

    return {"membership": share, "membership_units": [shown(r) for r in share.by_unit],
            "membership_months": [shown(r) for r in share.rows], "stamp_figures": stamps,
            "event_figures": event_kpis(unit_ids=f.unit_ids, start=f.start_at, end=f.end_at),
            "membership_total_share": percent(share.total.share) if share.total else "—"}


@manager_required
@require_GET
def dashboard_membership(request):
    """The members' share of revenue and the stamp card figures of the filter (what the dashboard's placeholder loads)."""
    form, f = _filter(request)
    return render(request, "web/analytics/_membership.html", membership_context(f))


CSV_CHARTS = {  # chart -> (panel, the chart or table of the panel's context)
    "kpis": ("kpis", "kpi_table"), "trend": ("kpis", "trend"), "rfm": ("rfm", "chart"), "segments": ("rfm", "segments"),
    "cohorts": ("cohorts", "chart"), "clv": ("clv", "chart"), "overlap": ("overlap", "chart"), "pairs": ("pairs", "chart"),
}


@manager_required
@require_GET
def dashboard_csv(request, chart: str):
    """The numbers of one chart as CSV (UTF-8 with a byte-order mark, so that Excel reads the Korean): the same
    figures as the page shows (kept for a while, see ``dashboard.panels``)."""
    if chart not in CSV_CHARTS:
        raise Http404
    form, f = _filter(request)
    if form.errors:
        return HttpResponse(" ".join(m for messages in form.errors.values() for m in messages), status=400,
                            content_type="text/plain; charset=utf-8")
    name, part = CSV_CHARTS[chart]
    run = analytics_selectors.latest_run()
    computed = data.panels(f, run_id=run.pk if run else None, names=[name])[name]
    table = panel_context(f, name, computed)[part]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    scope = f.unit.code if f.unit else ("group" if f.unit_ids is None else "my-units")
    response["Content-Disposition"] = f'attachment; filename="dangol-{chart}-{scope}-{f.start}-{f.end}.csv"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(table.head)
    for row in table.rows:
        writer.writerow(["" if c.raw is None else c.raw for c in row])
    return response


def _score(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and len(raw) == 1 else (-1 if raw else None)


@manager_required
@require_GET
def segment(request):
    """The customers of an RFM cell (?r=&f=) or segment (?segment=), in the filter's units, masked, highest spend
    first."""
    form, f = _filter(request)
    r, fs, name = _score(request.GET.get("r")), _score(request.GET.get("f")), (request.GET.get("segment") or "")[:40]
    try:
        qs = data.segment_customers(f, r=r, f_score=fs, segment=name)
    except ValidationError as exc:
        return render(request, "web/analytics/segment.html", {
            "form": form, "f": f, "errors": [m for ms in exc.message_dict.values() for m in ms], "page": None,
            "back": reverse("web:analytics_dashboard") + "?" + _query(f)}, status=400)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"customer": c, "masked": mask_name(c.name), "m": c.metrics,
             "segment_label": RfmSegment(c.metrics.rfm_segment).label if c.metrics.rfm_segment else "—"} for c in page]
    if name:
        title = RfmSegment(name).label
        description = DESCRIPTIONS[RfmSegment(name)]
    else:
        cell_segment = SEGMENT_GRID[r - 1][fs - 1]
        title = _("R %(r)d · F %(f)d (%(segment)s)") % {"r": r, "f": fs, "segment": cell_segment.label}
        description = DESCRIPTIONS[cell_segment]
    keep = _query(f, r=r, f=fs, segment=name)
    return render(request, "web/analytics/segment.html", {
        "form": form, "f": f, "page": page, "rows": rows, "title": title, "description": description, "keep": keep,
        "back": reverse("web:analytics_dashboard") + "?" + _query(f), "errors": []})


@manager_required
@require_GET
def lookalikes(request):
    """Prospects and new customers who look most like the best customers of the filter's units."""
    form, f = _filter(request)
    run = analytics_selectors.latest_run()
    key = f"dangol:lookalikes:v1:{f.unit_ids}:{run.pk if run else 0}:{translation.get_language()}"
    result = cache.get(key) if data.cache_seconds() > 0 else None
    if result is None:  # a model fitted on tens of thousands of customers: kept as long as the dashboard's figures
        result = rec.lookalikes(customers=data.customers_in(f), as_of=run.as_of if run else None, limit=PAGE_SIZE)
        if data.cache_seconds() > 0:
            cache.set(key, result, data.cache_seconds())
    people = data.customers_in(f).select_related("home_unit").in_bulk([r.customer_id for r in result.results])
    rows = [{"customer": people[r.customer_id], "masked": mask_name(people[r.customer_id].name), "score": r.score,
             "shown": percent(r.score, 0), "reasons": r.reasons} for r in result.results if r.customer_id in people]
    return render(request, "web/analytics/lookalikes.html", {
        "form": form, "f": f, "result": result, "rows": rows, "run": run,
        "counts": {"seeds": number(result.seeds), "trained": number(result.trained_on), "candidates": number(result.candidates)},
        "traits": [{"name": name, "best": percent(best, 0), "rest": percent(rest, 0)} for name, best, rest in result.traits],
        "back": reverse("web:analytics_dashboard") + "?" + _query(f)})


# --- the 360° panel -------------------------------------------------------------------------------------------------

def _days(n) -> str:
    return _("%(n)s days") % {"n": number(n)}


def metric_rows(m, *, with_money: bool) -> list[dict]:
    """Each metric of a customer with a one-line explanation of what it means."""
    rows = []
    segment = RfmSegment(m.rfm_segment) if m.rfm_segment else None
    rows.append({"key": "recency", "label": _("Recency"),
                 "value": _days(m.recency_days) if m.recency_days is not None else "—",
                 "score": m.r_score,
                 "explain": _("Days since the last purchase. The R score (1–5) ranks it among all buyers: 5 is the most "
                              "recent fifth.")})
    rows.append({"key": "frequency", "label": _("Frequency"),
                 "value": _("%(orders)s purchases on %(days)s days") % {"orders": number(m.orders),
                                                                       "days": number(m.frequency + 1 if m.orders else 0)},
                 "score": m.f_score,
                 "explain": _("How often the customer buys; the F score (1–5) ranks the number of purchase days.")})
    if with_money:
        rows.append({"key": "monetary", "label": _("Monetary"),
                     "value": _("%(total)s, %(avg)s per purchase") % {"total": won(m.monetary_total), "avg": won(m.monetary_avg)},
                     "score": m.m_score,
                     "explain": _("Total spend net of refunds; the M score (1–5) ranks it among all buyers.")})
    rows.append({"key": "segment", "label": _("RFM segment"), "value": segment.label if segment else _("No purchase yet"),
                 "explain": str(DESCRIPTIONS[segment]) if segment else _("Scores start with the first purchase.")})
    rows.append({"key": "p_alive", "label": _("P(alive)"), "value": percent(m.p_alive, 0),
                 "explain": _("Probability that the customer still buys from us rather than having quietly left "
                              "(BG/NBD model, from the rhythm of past purchases).")})
    rows.append({"key": "expected", "label": _("Expected purchases"),
                 "value": (_("%(q)s in 90 days · %(y)s in a year") % {
                     "q": decimal(m.expected_purchases_90, 1),
                     "y": decimal(m.expected_purchases_365, 1)}) if m.expected_purchases_90 is not None else "—",
                 "explain": _("How many purchases the model expects from this customer in the coming 90 and 365 days.")})
    if with_money:
        rows.append({"key": "clv", "label": _("CLV (12 months)"), "value": won(m.clv_12m) if m.clv_12m is not None else "—",
                     "explain": _("Customer lifetime value: expected purchases × expected spend per purchase over the "
                                  "next 12 months, discounted to today.")})
    risk = m.churn_risk
    level = "" if risk is None else (_("high") if risk >= data.CHURN_RISK_HIGH else _("medium") if risk >= 0.25 else _("low"))
    rows.append({"key": "churn", "label": _("Churn risk"), "value": f"{percent(risk, 0)} ({level})" if level else "—",
                 "level": "high" if risk is not None and risk >= data.CHURN_RISK_HIGH else "",
                 "explain": _("Chance that the customer stops buying in the coming months (the churn model). From "
                              "%(pct)d %% on, the customer counts as at risk.") % {"pct": round(data.CHURN_RISK_HIGH * 100)}})
    if with_money:
        rows.append({"key": "profit", "label": _("Profit"), "value": won(m.profit),
                     "explain": _("Revenue minus product cost, discounts and redeemed points, over the whole history.")})
    rows.append({"key": "units", "label": _("Business units used"),
                 "value": _("%(n)s (share of wallet %(share)s)") % {"n": number(m.units_used), "share": percent(m.wallet_share, 0)},
                 "explain": _("At how many of the group's business units the customer has bought.")})
    return rows


@customer_panel(order=30)
def analysis_panel(request, customer):
    """The customer's metrics with what they mean, for everyone who sees the customer; the next-best products and
    the up-sell follow in a second request (htmx), so that the 360° page itself stays one cheap query heavier.
    Amounts (spend, CLV, profit) span the whole group, so only managers and admins see them; staff see the
    behaviour scores and the suggestions for their own units."""
    metrics = analytics_selectors.metrics_for(customer)
    with_money = may_see_dashboard(request.user)
    return Panel("web/analytics/_customer_panel.html", {
        "metrics": metrics, "rows": metric_rows(metrics, with_money=with_money) if metrics else [],
        "suggestions_url": reverse("web:analytics_customer_suggestions", args=[customer.pk]),
    })


@login_required
@require_GET
def customer_suggestions(request, customer_id: int):
    """Next-best products and up-sell of a customer the user may see, among the products of the user's units."""
    customer = customers_for(request.user).filter(pk=customer_id).first()
    if customer is None:
        raise Http404  # outside the user's units looks the same as not existing
    units = list(units_for(request.user).values_list("pk", flat=True))
    allowed_products = Product.objects.filter(unit_id__in=units, is_active=True).values_list("pk", flat=True)
    next_best = rec.next_best_products(customer=customer, allowed_product_ids=list(allowed_products))
    upsell = rec.upsell_for(customer=customer, allowed_unit_ids=units)
    return render(request, "web/analytics/_suggestions.html", {"panel": {
        "next_best": [{"item": n, "score": percent(n.score, 0), "confidence": percent(n.confidence, 0),
                       "lift": decimal(n.lift, 1)} for n in next_best],
        "upsell": upsell, "with_money": may_see_dashboard(request.user)}})
